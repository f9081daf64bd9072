from django.urls import path

from pipelines import views

app_name = "pipelines"
urlpatterns = [
    path("", views.pipeline_list, name="list"),
    path("new/", views.pipeline_create, name="create"),
    path("<id:pipeline_pk>/rename/", views.pipeline_rename, name="rename"),
    path("<id:pipeline_pk>/move/", views.pipeline_move, name="move"),
    path("<id:pipeline_pk>/settings/", views.pipeline_settings, name="settings"),
    path("<id:pipeline_pk>/archive/", views.pipeline_archive, name="archive"),
    path("<id:pipeline_pk>/stages/new/", views.stage_create, name="stage-create"),
    path("<id:pipeline_pk>/stages/order/", views.stages_order, name="stages-order"),
    path("<id:pipeline_pk>/stages/<id:stage_pk>/rename/", views.stage_rename, name="stage-rename"),
    path("<id:pipeline_pk>/stages/<id:stage_pk>/state/", views.stage_state, name="stage-state"),
    path("<id:pipeline_pk>/stages/<id:stage_pk>/move/", views.stage_move, name="stage-move"),
    path("<id:pipeline_pk>/stages/<id:stage_pk>/rules/", views.stage_rules, name="stage-rules"),
    path("<id:pipeline_pk>/stages/<id:stage_pk>/delete/", views.stage_delete, name="stage-delete"),
]
