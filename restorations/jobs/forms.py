from django import forms
from django.core.exceptions import ValidationError

from restorations.jobs.operations import SPECS, Operation, clean_options, spec_for
from restorations.jobs.validation import check_image, clean_file_name

MAX_FILES_PER_UPLOAD = 50


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data]
        files = [f for f in files if f]
        if not files:
            raise ValidationError("Choose at least one photo.", code="required")
        if len(files) > MAX_FILES_PER_UPLOAD:
            raise ValidationError(
                f"Upload at most {MAX_FILES_PER_UPLOAD} photos at a time.", code="too_many"
            )
        return [super(MultipleFileField, self).clean(f, initial) for f in files]


def option_field_name(operation: str, option: str) -> str:
    return f"{operation}__{option}"


class UploadForm(forms.Form):
    """Photos, an operation and its options. Options are one group of fields per operation."""

    photos = MultipleFileField(
        label="Photos",
        widget=MultipleFileInput(
            attrs={"accept": "image/jpeg,image/png,image/webp,image/bmp,image/tiff"}
        ),
    )
    operation = forms.ChoiceField(
        label="Restoration", choices=Operation.choices, initial=Operation.OLD_PHOTO
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for spec in SPECS.values():
            for option in spec.options:
                self.fields[option_field_name(spec.operation, option.name)] = forms.ChoiceField(
                    label=option.label,
                    choices=option.choices,
                    initial=option.default,
                    required=False,
                    help_text=option.help,
                )

    def option_groups(self):
        """[(spec, [bound fields])] for the template."""
        return [
            (spec, [self[option_field_name(spec.operation, o.name)] for o in spec.options])
            for spec in SPECS.values()
        ]

    def clean(self):
        cleaned = super().clean()
        operation = cleaned.get("operation")
        if not operation:
            return cleaned
        spec = spec_for(operation)
        raw = {}
        for option in spec.options:
            value = self.data.get(option_field_name(operation, option.name))
            if value is not None and not (option.requires and value == option.default):
                raw[option.name] = value
        try:
            cleaned["options"] = clean_options(operation, raw)
        except ValidationError as error:
            self.add_error("operation", error)
        errors, cleaned["checked"] = [], []
        for photo in cleaned.get("photos") or []:
            try:
                cleaned["checked"].append(check_image(photo, spec))
            except ValidationError as error:
                errors.append(
                    ValidationError(f"{clean_file_name(photo.name)}: {error.messages[0]}")
                )
        if errors:
            self.add_error("photos", errors)
        return cleaned
