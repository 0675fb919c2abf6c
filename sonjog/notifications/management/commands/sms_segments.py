from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from sonjog.core.cli import SonjogCommand, text_arg
from sonjog.notifications.segments import GSM7, count_segments

# As long as an SMS text gets anywhere in Sonjog (a template's text).
MAX_TEXT_LENGTH = 2000


class Command(SonjogCommand):
    help = "Count the SMS segments a text costs: GSM-7 (160, or 153 per part) or UCS-2 (70, or 67 per part)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("text", type=text_arg(MAX_TEXT_LENGTH, multiline=True))
        parser.add_argument("--json", action="store_true", help='print {"encoding", "units", "segments"}')

    def handle(self, *args: Any, **options: Any) -> None:
        count = count_segments(options["text"])
        if options["json"]:
            self.stdout.write(json.dumps(count.as_dict(), ensure_ascii=False))
            return
        unit = "septets" if count.encoding == GSM7 else "UTF-16 units"
        plural = "" if count.segments == 1 else "s"
        self.stdout.write(f"{count.encoding}: {count.units} {unit}, {count.segments} segment{plural}")
