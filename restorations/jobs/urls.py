from django.urls import path

from restorations.jobs.views import archives, batches, files, tasks, uploads

app_name = "jobs"
urlpatterns = [
    path("", tasks.task_list, name="task_list"),
    path("new/", uploads.task_create, name="task_create"),
    path("new/photo/", uploads.upload_photo, name="upload_photo"),
    path("batches/<uuid:public_id>/", batches.batch_detail, name="batch_detail"),
    path("live/", tasks.task_live, name="task_live"),
    path("bulk/", tasks.task_bulk, name="task_bulk"),
    path("download/", archives.selection_download, name="selection_download"),
    path("batches/<uuid:public_id>/download/", archives.batch_download, name="batch_download"),
    path("<uuid:public_id>/", tasks.task_detail, name="task_detail"),
    path("<uuid:public_id>/cancel/", tasks.task_cancel, name="task_cancel"),
    path("<uuid:public_id>/retry/", tasks.task_retry, name="task_retry"),
    path("<uuid:public_id>/original/", files.download_original, name="download_original"),
    path("<uuid:public_id>/result/", files.download_result, name="download_result"),
    path("<uuid:public_id>/original/view/", files.view_original, name="view_original"),
    path("<uuid:public_id>/result/view/", files.view_result, name="view_result"),
    path("<uuid:public_id>/thumbnail/", files.thumbnail, name="thumbnail"),
    path("<uuid:public_id>/result-thumbnail/", files.result_thumbnail, name="result_thumbnail"),
]
