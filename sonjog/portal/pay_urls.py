"""The online payment's public addresses: the payer's return and status page (under /pay/) and the
gateways' notifications (under /hooks/gateways/); see `sonjog.portal.pay`."""

from django.urls import path

from sonjog.portal import pay

urlpatterns = [
    path("start/<int:account_id>/", pay.pay_start, name="pay_start"),
    path("<str:reference>/", pay.payment_status, name="pay_status"),
    path("<str:reference>/return/", pay.payment_return, name="pay_return"),
]

suspended_urlpatterns = [
    path("", pay.suspended_view, name="suspended"),
    path("pay/<int:account_id>/", pay.suspended_pay, name="suspended_pay"),
]

hook_urlpatterns = [
    path("<str:gateway>/", pay.gateway_notification, name="gateway_notification"),
]
