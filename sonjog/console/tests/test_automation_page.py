"""The Automation page: owners of the top operator see every job and can run one now."""

from __future__ import annotations

import pytest
from django.urls import reverse

from sonjog.automation.models import JobRun
from sonjog.automation.registry import JOBS
from sonjog.console.tests.conftest import add_staff

pytestmark = pytest.mark.django_db


def test_owner_sees_every_job_with_schedule_and_next_run(tree):
    response = tree.login(tree.root.staff["owner"]).get(reverse("console:automation"))
    assert response.status_code == 200
    body = response.content.decode()
    for job in JOBS.values():
        assert job.title in body and job.cron in body
    assert body.count("Run now") == len(JOBS)


def test_run_now_runs_the_job_once_and_records_it(tree):
    client = tree.login(tree.root.staff["owner"])
    url = reverse("console:automation_run", args=["automation.log_retention"])
    asked = client.post(url)
    assert asked.status_code == 200 and "Run “Purge old operational logs” now?" in asked.content.decode()
    assert not JobRun.objects.exists()
    response = client.post(url, {"step": "confirm"}, follow=True)
    assert response.status_code == 200
    run = JobRun.objects.get(job_name="automation.log_retention")
    assert (run.trigger, run.status, run.actor) == ("manual", "ok", tree.root.staff["owner"])
    assert "Purge old operational logs ran." in response.content.decode()
    assert "manual" in client.get(reverse("console:automation")).content.decode()


def test_resellers_and_clerks_cannot_run_jobs(tree):
    reseller_owner = add_staff(tree.north, "owner")
    assert tree.login(reseller_owner).get(reverse("console:automation")).status_code == 404
    assert tree.login(tree.root.staff["billing_clerk"]).get(reverse("console:automation")).status_code == 403
    url = reverse("console:automation_run", args=["automation.log_retention"])
    assert tree.login(tree.root.staff["billing_clerk"]).post(url).status_code == 403
    assert not JobRun.objects.exists()


def test_unknown_job_is_404(tree):
    url = reverse("console:automation_run", args=["no.such.job"])
    assert tree.login(tree.root.staff["owner"]).post(url).status_code == 404
