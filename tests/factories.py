"""factory_boy factories shared by the tests."""

from __future__ import annotations

import factory
from django.contrib.auth.models import Group, User

from hubspot.permissions import PIPELINE_ADMIN, SUPPORT

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
            self.groups.add(*Group.objects.filter(name__in=extracted))


def support_user(**kwargs: object) -> User:
    return UserFactory(groups=[SUPPORT], **kwargs)


def pipeline_admin(**kwargs: object) -> User:
    return UserFactory(groups=[SUPPORT, PIPELINE_ADMIN], **kwargs)
