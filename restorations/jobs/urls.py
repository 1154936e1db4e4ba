from django.urls import path

from restorations.jobs import views

app_name = "jobs"
urlpatterns = [
    path("", views.task_list, name="task_list"),
    path("new/", views.task_create, name="task_create"),
    path("live/", views.task_live, name="task_live"),
    path("bulk/", views.task_bulk, name="task_bulk"),
    path("<uuid:public_id>/", views.task_detail, name="task_detail"),
    path("<uuid:public_id>/cancel/", views.task_cancel, name="task_cancel"),
    path("<uuid:public_id>/retry/", views.task_retry, name="task_retry"),
    path("<uuid:public_id>/original/", views.download_original, name="download_original"),
    path("<uuid:public_id>/result/", views.download_result, name="download_result"),
    path("<uuid:public_id>/thumbnail/", views.thumbnail, name="thumbnail"),
    path("<uuid:public_id>/result-thumbnail/", views.result_thumbnail, name="result_thumbnail"),
]
