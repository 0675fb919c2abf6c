"""The demo's payment gateways: a local bKash, Nagad and SSLCommerz emulator (threads in the demo's
process, on fixed loopback ports) and a merchant account of the demo ISP at each, so "Pay now" in
the subscriber portal and on the suspension page goes through a real checkout page end to end.

bKash's signed webhooks and SSLCommerz's IPNs post back to the demo's own web server. Nagad's
emulator makes a new key pair each start, so the account's keys are renewed each start too.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sonjog.gateways.emulator.bkash import BkashEmulator
from sonjog.gateways.emulator.http import EmulatorServer
from sonjog.gateways.emulator.nagad import NagadEmulator
from sonjog.gateways.emulator.sslcommerz import SslcommerzEmulator
from sonjog.gateways.models import GatewayAccount
from sonjog.gateways.services import gateway_account_create, gateway_account_update
from sonjog.operators.models import Operator

BKASH_PORT, NAGAD_PORT, SSLCOMMERZ_PORT = 8791, 8792, 8793
BKASH = {"username": "demo-isp", "password": "demo-bkash", "app_key": "demo-app-key", "app_secret": "demo-app-secret"}
NAGAD_MERCHANT = "683002007104225"
SSLCOMMERZ = {"store_id": "demoisp01", "store_password": "demoisp01@ssl"}


@dataclass
class DemoGateways:
    emulators: list[EmulatorServer]
    accounts: list[GatewayAccount]

    def stop(self) -> None:
        for emulator in self.emulators:
            emulator.stop()


def _merchant_keys() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def _account(
    root: Operator, gateway: str, name: str, base_url: str, merchant: str, credentials: dict[str, str]
) -> GatewayAccount:
    account = GatewayAccount.objects.filter(operator=root, gateway=gateway, merchant_account=merchant).first()
    if account is None:
        return gateway_account_create(
            operator=root,
            gateway=gateway,
            name=name,
            base_url=base_url,
            merchant_account=merchant,
            credentials=credentials,
        )
    gateway_account_update(account=account, actor=None, base_url=base_url, credentials=credentials, active=True)
    account.refresh_from_db()
    return account


def demo_gateways_start(root: Operator, site_url: str) -> DemoGateways:
    """Start the three emulators and point the demo ISP's accounts at them; `site_url` is where the
    demo's web server answers (for the webhooks and IPNs)."""
    bkash = BkashEmulator(
        port=BKASH_PORT,
        webhook_url=f"{site_url}hooks/gateways/bkash/",
        merchant_name=root.name,
        username=BKASH["username"],
        password=BKASH["password"],
        app_key=BKASH["app_key"],
        app_secret=BKASH["app_secret"],
    ).start()
    nagad = NagadEmulator(port=NAGAD_PORT).start()
    sslcommerz = SslcommerzEmulator(stores={SSLCOMMERZ["store_id"]: SSLCOMMERZ["store_password"]}, port=SSLCOMMERZ_PORT)
    sslcommerz.start()
    private, public = _merchant_keys()
    nagad.add_merchant(NAGAD_MERCHANT, public, name=root.name)
    accounts = [
        _account(root, "bkash", "bKash", bkash.api_url, bkash.short_code, BKASH),
        _account(
            root,
            "nagad",
            "Nagad",
            nagad.url,
            NAGAD_MERCHANT,
            {
                "merchant_id": NAGAD_MERCHANT,
                "merchant_private_key": private,
                "gateway_public_key": nagad.public_key_pem,
            },
        ),
        _account(root, "sslcommerz", "SSLCommerz", sslcommerz.url, SSLCOMMERZ["store_id"], SSLCOMMERZ),
    ]
    return DemoGateways(emulators=[bkash, nagad, sslcommerz], accounts=accounts)
