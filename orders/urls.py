from django.urls import path

from orders import views

app_name = "orders"
urlpatterns = [
    path("", views.boards_home, name="boards"),
    path("<id:pipeline_pk>/", views.board, name="board"),
    path("<id:pipeline_pk>/columns/<id:stage_pk>/", views.column, name="column"),
    path("<id:pipeline_pk>/version/", views.board_version, name="version"),
    path("<id:pipeline_pk>/table/", views.table, name="table"),
    path("<id:pipeline_pk>/export.csv", views.export_csv, name="export"),
    path("<id:pipeline_pk>/views/", views.saved_view_create, name="saved-view-create"),
    path("<id:pipeline_pk>/bulk-move/", views.bulk_move, name="bulk-move"),
    path("<id:pipeline_pk>/views/<id:view_pk>/delete/", views.saved_view_delete, name="saved-view-delete"),
    path("orders/<key:hubspot_id>/move/", views.move, name="move"),
    path("orders/<key:hubspot_id>/", views.drawer, name="drawer"),
    path("orders/<key:hubspot_id>/properties/<key:name>/", views.property_edit, name="property-edit"),
    path("orders/<key:hubspot_id>/properties/<key:name>/save/", views.property_save, name="property-save"),
    path("orders/<key:hubspot_id>/resync/", views.resync, name="resync"),
]
