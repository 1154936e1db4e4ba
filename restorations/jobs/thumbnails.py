"""Small previews for the task list, made once when a photo or a result is stored.

The list shows 50 rows a page and refreshes them: decoding a 30 MB original per row and view
would cost seconds, so a preview is made when the file is stored and served as a file after.
"""

import io
import logging
import warnings

from django.core.files.base import ContentFile
from PIL import Image, ImageOps

log = logging.getLogger(__name__)

LONG_EDGE = 320
EXTENSION = ".webp"
CONTENT_TYPE = "image/webp"
# The results the caps allow reach 179 megapixels (states.RESULT_TOO_LARGE); the originals the
# checks allow are smaller. Above that Pillow's bomb guard would refuse the file anyway.
_MAX_PIXELS = 179_000_000


def make(file) -> ContentFile | None:
    """A WebP preview, long edge at most 320 px, turned as the camera's EXIF says; None if the
    file cannot be read as an image (the list then shows a placeholder)."""
    try:
        file.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(file) as image:
                if image.width * image.height > _MAX_PIXELS:
                    return None
                image.draft("RGB", (LONG_EDGE, LONG_EDGE))  # JPEG decodes at a fraction
                preview = ImageOps.exif_transpose(image)
                preview.thumbnail((LONG_EDGE, LONG_EDGE), Image.Resampling.LANCZOS)
                if preview.mode not in ("RGB", "RGBA"):
                    preview = preview.convert("RGBA" if "A" in preview.getbands() else "RGB")
                buffer = io.BytesIO()
                preview.save(buffer, format="WEBP", quality=80, method=4)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        log.warning("no thumbnail: %s", error)
        return None
    finally:
        file.seek(0)
    return ContentFile(buffer.getvalue())
