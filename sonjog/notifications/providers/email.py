"""E-mail through Django's SMTP backend.

The server comes from the account (options host, port, use_tls, use_ssl; username; password in the
credentials) and, where the account leaves it empty, from Django's EMAIL_HOST, EMAIL_PORT,
EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS and EMAIL_USE_SSL. Text is sent as UTF-8, so
Bangla subjects and bodies arrive intact (encoded words in the subject, 8bit or base64 in the body).
The provider id is the Message-ID we generate.
"""

from __future__ import annotations

import smtplib

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.smtp import EmailBackend
from django.core.mail.message import make_msgid

from sonjog.notifications.providers.base import FailureReason, OutgoingMessage, Provider, SendResult


class SmtpEmail(Provider):
    kind = "smtp"

    def backend(self) -> EmailBackend:
        account = self.account
        return EmailBackend(
            host=account.option("host") or settings.EMAIL_HOST,
            port=int(account.option("port") or settings.EMAIL_PORT),
            username=account.username or settings.EMAIL_HOST_USER,
            password=account.credentials.get("password") or settings.EMAIL_HOST_PASSWORD,
            use_tls=bool(account.option("use_tls", settings.EMAIL_USE_TLS)),
            use_ssl=bool(account.option("use_ssl", settings.EMAIL_USE_SSL)),
            timeout=float(account.option("timeout", self.timeout_seconds)),
            fail_silently=False,
        )

    def send(self, message: OutgoingMessage) -> SendResult:
        domain = self.account.sender_id.rpartition("@")[2] or None
        message_id = make_msgid(domain=domain)
        email = EmailMessage(
            subject=message.subject,
            body=message.body,
            from_email=self.account.sender_id or settings.DEFAULT_FROM_EMAIL,
            to=[message.recipient],
            headers={"Message-ID": message_id},
            connection=self.backend(),
        )
        try:
            email.send()
        except smtplib.SMTPAuthenticationError as error:
            return SendResult.failed(FailureReason.AUTH, str(error), error.smtp_code)
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _text in error.recipients.values()]
            reason = FailureReason.TEMPORARY if codes and all(400 <= c < 500 for c in codes) else None
            return SendResult.failed(reason or FailureReason.INVALID_ADDRESS, str(error), codes[0] if codes else "")
        except smtplib.SMTPSenderRefused as error:
            return SendResult.failed(FailureReason.CONFIGURATION, str(error), error.smtp_code)
        except smtplib.SMTPResponseException as error:
            transient = 400 <= error.smtp_code < 500
            return SendResult.failed(
                FailureReason.TEMPORARY if transient else FailureReason.REJECTED, str(error), error.smtp_code
            )
        except (TimeoutError, smtplib.SMTPException, OSError) as error:
            # Refused connections, disconnects, timeouts: the mail server may be back in a minute.
            return SendResult.failed(FailureReason.TEMPORARY, f"{type(error).__name__}: {error}")
        return SendResult.sent(message_id.strip("<>"))
