"""factory_boy factories shared by the tests."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth.models import Group, User
from django.utils import timezone

from config.permissions import PIPELINE_ADMIN, SUPPORT
from hubspot_sync.models import PropertyDefinition
from orders.models import Order
from pipelines.models import Pipeline, Stage, StageState

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@shop.example")
    first_name = "Sam"
    last_name = factory.Sequence(lambda n: f"Staff{n}")
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def groups(self, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        if create and extracted:
            # get_or_create: a transactional test's flush removes the groups the data migration made.
            self.groups.add(*(Group.objects.get_or_create(name=name)[0] for name in extracted))


def support_user(**kwargs: object) -> User:
    return UserFactory(groups=[SUPPORT], **kwargs)


def pipeline_admin(**kwargs: object) -> User:
    return UserFactory(groups=[SUPPORT, PIPELINE_ADMIN], **kwargs)


# --- the cache ----------------------------------------------------------------------------------------------


class PipelineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Pipeline

    hubspot_id = factory.Sequence(lambda n: f"pipeline-{n}")
    label = factory.Sequence(lambda n: f"Pipeline {n}")
    display_order = factory.Sequence(lambda n: n)


class StageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Stage

    pipeline = factory.SubFactory(PipelineFactory)
    hubspot_id = factory.Sequence(lambda n: f"stage-{n}")
    label = factory.Sequence(lambda n: f"Stage {n}")
    display_order = factory.Sequence(lambda n: n)
    state = StageState.OPEN


def pipeline_with_stages(
    labels: tuple[str, ...] = ("Open", "Paid", "Shipped", "Delivered", "Cancelled"),
    closed: tuple[str, ...] = ("Delivered", "Cancelled"),
    **kwargs: object,
) -> Pipeline:
    pipeline = PipelineFactory(**kwargs)
    for order, label in enumerate(labels):
        StageFactory(
            pipeline=pipeline,
            label=label,
            display_order=order,
            state=StageState.CLOSED if label in closed else StageState.OPEN,
        )
    return pipeline


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    hubspot_id = factory.Sequence(lambda n: str(30_000_000_000 + n))
    name = factory.Sequence(lambda n: f"Order #{1000 + n}")
    stage = factory.SubFactory(StageFactory)
    pipeline = factory.LazyAttribute(lambda o: o.stage.pipeline)
    total = Decimal("49.90")
    currency = "EUR"
    store = "Main store"
    fulfillment_status = "Unfulfilled"
    customer_name = "Alex Example"
    customer_email = factory.Sequence(lambda n: f"customer{n}@shop.example")
    remote_created_at = factory.Sequence(lambda n: timezone.now() - timedelta(minutes=n))
    remote_updated_at = factory.LazyFunction(timezone.now)
    stage_entered_at = factory.LazyFunction(timezone.now)
    properties = factory.LazyAttribute(
        lambda o: {
            "hs_order_name": o.name,
            "hs_pipeline": o.stage.pipeline.hubspot_id,
            "hs_pipeline_stage": o.stage.hubspot_id,
            "hs_total_price": str(o.total),
            "hs_currency_code": o.currency,
            "hs_source_store": o.store,
            "hs_fulfillment_status": o.fulfillment_status,
        }
    )


def order_property(
    name: str, label: str, type_: str, field_type: str, **fields: object
) -> PropertyDefinition:
    """An order property's definition, as the definitions sync stores it (in HubSpot's default group)."""
    return PropertyDefinition.objects.create(
        object_type="orders",
        name=name,
        label=label,
        type=type_,
        field_type=field_type,
        group_name="order_information",
        **fields,
    )
