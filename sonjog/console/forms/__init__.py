"""Console forms, one module per part of the console:

- `common`: row choices from the acting scope, the shared choice fields, the login form
- `subscribers`: creating and changing subscribers, add-ons, bulk actions
- `billing`: payments, adjustments, "Generate invoices"
- `catalog`: packages, add-ons, zones
- `messaging`: templates, bulk SMS, SMS credit, message settings
- `providers`: provider accounts

List filters are not here: they are the domain apps' FilterSets (`sonjog.<app>.filters`). Every name
is re-exported, so `from sonjog.console.forms import X` keeps working."""

from sonjog.console.forms.billing import AdjustmentForm, GenerateForm, PaymentForm
from sonjog.console.forms.catalog import AddOnForm, AddOnSaleForm, PackageForm, ZoneForm
from sonjog.console.forms.common import LoginForm, OperatorChoiceField, PackageChoiceField, PeriodField
from sonjog.console.forms.messaging import (
    TEMPLATE_BODY_MAX_LENGTH,
    BulkSmsForm,
    MessageTemplateForm,
    NotificationSettingsForm,
    SmsTemplateChoiceField,
    SmsThresholdForm,
    SmsTopUpForm,
    unknown_variables,
    unknown_variables_message,
)
from sonjog.console.forms.providers import (
    OPTIONS_JSON_MAX_LENGTH,
    PROVIDER_SECRETS,
    REQUIRED_SECRETS,
    SECRET_LABELS,
    SMTP_OPTIONS,
    WHATSAPP_OPTIONS,
    ProviderAccountForm,
)
from sonjog.console.forms.subscribers import (
    AddOnActivateForm,
    AddOnChoiceField,
    AddOnDeactivateForm,
    BulkActionForm,
    ChangePackageForm,
    ContactForm,
    IntentForm,
    InvoiceVoidForm,
    ReasonForm,
    SubscriberCreateForm,
    TerminateForm,
)

__all__ = [
    "OPTIONS_JSON_MAX_LENGTH",
    "PROVIDER_SECRETS",
    "REQUIRED_SECRETS",
    "SECRET_LABELS",
    "SMTP_OPTIONS",
    "TEMPLATE_BODY_MAX_LENGTH",
    "WHATSAPP_OPTIONS",
    "AddOnActivateForm",
    "AddOnChoiceField",
    "AddOnDeactivateForm",
    "AddOnForm",
    "AddOnSaleForm",
    "AdjustmentForm",
    "BulkActionForm",
    "BulkSmsForm",
    "ChangePackageForm",
    "ContactForm",
    "GenerateForm",
    "IntentForm",
    "InvoiceVoidForm",
    "LoginForm",
    "MessageTemplateForm",
    "NotificationSettingsForm",
    "OperatorChoiceField",
    "PackageChoiceField",
    "PackageForm",
    "PaymentForm",
    "PeriodField",
    "ProviderAccountForm",
    "ReasonForm",
    "SmsTemplateChoiceField",
    "SmsThresholdForm",
    "SmsTopUpForm",
    "SubscriberCreateForm",
    "TerminateForm",
    "ZoneForm",
    "unknown_variables",
    "unknown_variables_message",
]
