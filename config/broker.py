"""The embedded broker: kombu's filesystem transport, with messages written atomically.

kombu's own transport writes a message file in place, and a worker polling the folder can pick the file up
before its content is written, then die on the half-read JSON. Here a message is written under a name the
readers skip and renamed into place when complete (a rename within one folder is atomic), so a reader sees
a whole message or none. `config.celery` registers this class under the "filesystem" name, so
`CELERY_BROKER_URL=filesystem://` uses it in every process.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # Readers take only "<stamp>_<uuid>.<queue>.msg"; a leading dot never matches that.
        partial = os.path.join(self.data_folder_out, f".{name}.partial")
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add a message to {self.data_folder_out!r}") from exc


class Transport(filesystem.Transport):
    Channel = Channel
