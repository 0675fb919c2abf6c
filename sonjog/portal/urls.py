"""The subscriber portal, under /my/ (sonjog/urls.py)."""

from django.urls import path

from sonjog.portal import views

app_name = "portal"

urlpatterns = [
    path("", views.home_view, name="home"),
    path("signin/", views.signin_view, name="signin"),
    path("signin/choose/", views.signin_choose_view, name="signin_choose"),
    path("signin/code/", views.signin_code_view, name="signin_code"),
    path("signin/pppoe/", views.signin_pppoe_view, name="signin_pppoe"),
    path("signout/", views.signout_view, name="signout"),
    path("signout/everywhere/", views.signout_everywhere_view, name="signout_everywhere"),
    path("bills/", views.bills_view, name="bills"),
    path("invoices/<int:invoice_id>/", views.invoice_view, name="invoice"),
    path("invoices/<int:invoice_id>/pdf/", views.invoice_pdf_view, name="invoice_pdf"),
    path("payments/", views.payments_view, name="payments"),
    path("payments/<int:payment_id>/receipt/", views.receipt_view, name="receipt"),
    path("change/", views.change_view, name="change"),
    path("usage/", views.usage_view, name="usage"),
    path("messages/", views.messages_view, name="messages"),
]
