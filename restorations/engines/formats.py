"""Image formats by Pillow's name: the file extension each is stored and downloaded with."""

EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}
