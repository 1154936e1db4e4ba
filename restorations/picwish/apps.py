from django.apps import AppConfig


class PicWishConfig(AppConfig):
    name = "restorations.picwish"
    label = "picwish"
    verbose_name = "PicWish"
