"""PicWish's task state codes and their details, as picwish-protocol.md lists them."""

from __future__ import annotations

COMPLETED, QUEUED, PREPARING, WAITING, PROCESSING, PUBLISHING, PROCESSING_LOOP = 1, 0, 2, 3, 4, 5, 6
DOWNLOAD_FAILED, URL_FILE_TOO_LARGE, INVALID_IMAGE, FAILED = -3, -5, -7, -1

STATE_DETAILS = {
    COMPLETED: "Complete",
    QUEUED: "Queued",
    PREPARING: "Preparing",
    WAITING: "Waiting",
    PROCESSING: "Processing",
    PUBLISHING: "Publishing",
    PROCESSING_LOOP: "Processing (loop)",
    -1: "Restoration failed",
    -2: "Uploading the result failed",
    -3: "Downloading the image failed",
    -5: "The image_url file exceeds 30 MB",
    -7: "Invalid image file",
    -8: "Processing timed out",
    -9: "Loop processing failed",
    -10: "Internal review found prohibited content",
    -11: "The result is empty",
    -13: "Canceled after an exception",
    -14: "The image does not meet the requirements",
    -15: "Insufficient resources",
    -16: "Third-party review found prohibited content",
    -17: "Invalid prompt",
}


def is_final(state: int) -> bool:
    return state == COMPLETED or state < 0


def state_detail(state: int) -> str:
    return STATE_DETAILS.get(state, f"State {state}")
