from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandParser
from django.db import transaction

from sonjog.core.cli import SonjogCommand, host_arg, int_arg
from sonjog.demo.floats import demo_floats_ensure
from sonjog.demo.gateways import BKASH_PORT, NAGAD_PORT, SSLCOMMERZ_PORT, demo_gateways_start
from sonjog.demo.messaging import demo_gateway_start, demo_messaging_ensure
from sonjog.demo.network import demo_emulators_start, demo_routers_ensure
from sonjog.gateways.emulator.bkash import PAYER_PIN
from sonjog.network.reconcile import network_reconcile
from sonjog.operators.models import Operator, StaffRole
from sonjog.operators.services import staff_create

WORKER_RESTART_FIRST_DELAY = 1.0
WORKER_RESTART_MAX_DELAY = 30.0

DEMO_USERNAME = "admin"
DEMO_PASSWORD = "sonjog-demo"


class Command(SonjogCommand):
    help = "Load the demo ISP when the database is empty, then serve the web UI and run the worker."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", type=host_arg())
        parser.add_argument("--port", type=int_arg(1, 65535), default=8000)
        parser.add_argument("--no-serve", action="store_true", help="load data and the login, then exit")

    def handle(self, *args: Any, **options: Any) -> None:
        # The demo's SMS gateway listens on 127.0.0.1, which an installation refuses by default. Unless
        # the variable says otherwise, allow it here and in the worker and web server started below.
        if "SONJOG_ALLOW_PRIVATE_OUTBOUND" not in os.environ:
            os.environ["SONJOG_ALLOW_PRIVATE_OUTBOUND"] = "true"
            settings.SONJOG_ALLOW_PRIVATE_OUTBOUND = True
        if not Operator.objects.filter(code="demo-isp").exists():
            self.stdout.write("Loading the demo ISP (2,000 subscribers, 12 months) ...")
            call_command("seed", subscribers=2000, months=12, random_seed=7)
        with transaction.atomic():
            user = User.objects.filter(username=DEMO_USERNAME).first()
            if user is None:
                # The demo's owner is also the installation's superuser (the admin's sign-in).
                staff = staff_create(
                    operator=Operator.objects.get(code="demo-isp"),
                    username=DEMO_USERNAME,
                    password=DEMO_PASSWORD,
                    role=StaffRole.OWNER,
                )
                User.objects.filter(pk=staff.user_id).update(is_staff=True, is_superuser=True)
        north = Operator.objects.filter(code="demo-north").first()
        if north is not None and demo_floats_ensure(north) is not None:
            self.stdout.write("North Net (reseller) runs on a float at the demo ISP (Setup -> Floats)")
        call_command("collectstatic", interactive=False, verbosity=0)
        if options["no_serve"]:
            return
        root = Operator.objects.get(code="demo-isp")
        routers = demo_routers_ensure(root)
        emulators = demo_emulators_start(routers)
        demo_messaging_ensure(root)
        sms_gateway = demo_gateway_start()
        url = f"http://{options['host']}:{options['port']}/"
        # bKash's emulator signs its webhooks with a certificate it serves on 127.0.0.1.
        os.environ.setdefault("SONJOG_GATEWAY_CERT_HOSTS", "127.0.0.1")
        payment_gateways = demo_gateways_start(root, url)
        for router in routers:
            report = network_reconcile(router)[router.name]
            self.stdout.write(
                f"Router {router.name} (RouterOS API emulator on 127.0.0.1:{router.api_port}): "
                f"{report.checked} subscribers, {report.online} online"
            )
        self.stdout.write(f"SMS go to a local gateway on {sms_gateway.url} that accepts every message")
        self.stdout.write(
            "Online payments go to local bKash, Nagad and SSLCommerz emulators on 127.0.0.1:"
            f"{BKASH_PORT}/{NAGAD_PORT}/{SSLCOMMERZ_PORT} (bKash PIN {PAYER_PIN}, Nagad PIN 1234); "
            f"subscribers pay at {url}my/ and, when suspended, at {url}suspended/"
        )
        self.stdout.write(self.style.SUCCESS(f"\nSonjog is running at {url}"))
        self.stdout.write(f"Sign in as {DEMO_USERNAME} / {DEMO_PASSWORD}  (Ctrl+C stops everything)\n")
        sonjog = [sys.executable, "-m", "sonjog.cli"]
        worker_command = [*sonjog, "worker"]
        # Own sessions: Ctrl+C reaches this process only, which passes one SIGINT on to each child (the
        # worker takes a second one as "stop at once").
        children = {"worker": subprocess.Popen(worker_command, env=os.environ.copy(), start_new_session=True)}
        children["web"] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "sonjog.asgi:application",
                "--host",
                options["host"],
                "--port",
                str(options["port"]),
                "--log-level",
                "warning",
            ],
            env=os.environ.copy(),
            start_new_session=True,
        )

        def stop(_signum: int, _frame: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        try:
            self._keep_worker_running(worker_command, children)
        except KeyboardInterrupt:
            pass
        finally:
            for child in children.values():
                if child.poll() is None:
                    child.send_signal(signal.SIGINT)
            for child in children.values():
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
            for emulator in emulators:
                emulator.stop()
            sms_gateway.stop()
            payment_gateways.stop()

    def _keep_worker_running(self, command: list[str], children: dict[str, subprocess.Popen[bytes]]) -> None:
        """Serve until the web server ends, starting the worker again whenever it dies (after 1 s,
        doubling to 30 s while it keeps dying; back to 1 s once it has run for a minute)."""
        started, delay = time.monotonic(), WORKER_RESTART_FIRST_DELAY
        while children["web"].poll() is None:
            worker = children["worker"]
            if worker.poll() is None:
                time.sleep(0.5)
                continue
            if time.monotonic() - started >= 60:
                delay = WORKER_RESTART_FIRST_DELAY
            self.stderr.write(f"The worker exited (code {worker.returncode}); starting it again in {delay:g} s")
            time.sleep(delay)
            delay = min(delay * 2, WORKER_RESTART_MAX_DELAY)
            children["worker"] = subprocess.Popen(command, env=os.environ.copy(), start_new_session=True)
            started = time.monotonic()
