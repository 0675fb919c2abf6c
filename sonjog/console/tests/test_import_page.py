"""The Import page: upload, match columns, dry run naming the bad rows, import by the worker with
progress, undo; a reseller's staff see and touch only their own batches."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from sonjog.console.tests.conftest import Tree
from sonjog.core.jobs import run_worker_cycle
from sonjog.customers.models import Subscriber
from sonjog.transfer.columns import FIELDS
from sonjog.transfer.models import ImportBatch


def _upload(client, operator_id: int, text: str, name: str = "old.csv"):
    return client.post(
        reverse("console:import"),
        {"kind": "file", "operator": operator_id, "file": SimpleUploadedFile(name, text.encode("utf-8-sig"))},
    )


def _mapping_post(batch: ImportBatch, **extra: str) -> dict[str, str]:
    data = {f"map_{field.key}": batch.mapping.get(field.key, "") for field in FIELDS}
    data.update({"billing_from": "next", "balance_sign": "owes", "create_zones": "on", **extra})
    return data


@pytest.mark.django_db(transaction=True)
def test_upload_check_import_and_undo_from_the_console(tree: Tree):
    north = tree.north
    client = tree.login(north.staff["reseller_staff"])
    rows = [f"Person {n},0171500{n:04d},{north.package.name},New area,{n * 10}" for n in range(1, 31)]
    rows.append(f"Bad one,0171500{1:04d},{north.package.name},New area,0")  # phone of row 2 again
    response = _upload(client, north.operator.pk, "Name,Mobile,Package,Area,Due\n" + "\n".join(rows) + "\n")
    batch = ImportBatch.objects.get()
    assert response.status_code == 302 and batch.operator == north.operator and batch.total == 31
    page = client.get(reverse("console:import_batch", args=[batch.pk])).content.decode()
    assert "Person 1" in page and 'value="Mobile" selected' in page
    checked = client.post(reverse("console:import_batch", args=[batch.pk]), _mapping_post(batch, check="1"))
    text = checked.content.decode()
    assert "2 of 31 rows have problems" in text and "Nothing was written" in text
    assert 'name="apply"' not in text
    # Importing anyway is refused: the check runs again before anything is written.
    client.post(reverse("console:import_batch", args=[batch.pk]), _mapping_post(batch, apply="1"))
    assert not ImportBatch.objects.exclude(status="draft").exists()
    problems = client.get(reverse("console:import_problems", args=[batch.pk]))
    assert b"".join(problems.streaming_content).decode("utf-8-sig").count("\n") == 3  # type: ignore[attr-defined]
    # The file fixed: upload it again, check, import.
    _upload(client, north.operator.pk, "Name,Mobile,Package,Area,Due\n" + "\n".join(rows[:-1]) + "\n")
    fixed = ImportBatch.objects.latest("pk")
    ready = client.post(reverse("console:import_batch", args=[fixed.pk]), _mapping_post(fixed, check="1"))
    assert "30 subscribers will be imported" in ready.content.decode() and "New area" in ready.content.decode()
    client.post(reverse("console:import_batch", args=[fixed.pk]), _mapping_post(fixed, apply="1"))
    run_worker_cycle(queues=["console"])
    fixed.refresh_from_db()
    assert fixed.status == ImportBatch.Status.APPLIED and fixed.created == 30
    progress = client.get(reverse("console:import_batch", args=[fixed.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "30 subscribers imported, 30 with an opening balance" in progress and "Undo this import" in progress
    assert Subscriber.objects.filter(operator=north.operator, zone__name="New area").count() == 30
    # Another reseller's staff cannot see or undo it.
    south = tree.login(tree.south.staff["billing_clerk"])
    assert south.get(reverse("console:import_batch", args=[fixed.pk])).status_code == 404
    assert south.post(reverse("console:import_undo", args=[fixed.pk])).status_code == 404
    assert _upload(south, north.operator.pk, "Name,Mobile,Package\nX,01715999999,Y\n").status_code == 200
    assert ImportBatch.objects.filter(operator=tree.south.operator).count() == 0
    undone = client.post(reverse("console:import_undo", args=[fixed.pk]), follow=True).content.decode()
    assert "30 subscribers removed" in undone
    assert not Subscriber.objects.filter(operator=north.operator, zone__name="New area").exists()


@pytest.mark.django_db
def test_bad_uploads_and_mappings_get_a_message_and_write_nothing(tree: Tree):
    north = tree.north
    client = tree.login(north.staff["reseller_staff"])
    for text, name, message in [
        ("", "empty.csv", "the file has no rows"),
        ("Name,Phone,Package\n", "header.csv", "a header but no rows"),
        ("Name,Name\nA,B\n", "twice.csv", "names a column twice"),
        ("PK\x03\x04not really a workbook", "fake.xlsx", "not a readable XLSX"),
    ]:
        response = _upload(client, north.operator.pk, text, name)
        assert response.status_code == 200 and message in response.content.decode(), name
    assert _upload(client, tree.root.operator.pk, "Name\nA\n").status_code == 200  # not its operator
    assert not ImportBatch.objects.exists()
    _upload(client, north.operator.pk, f"Name,Mobile,Package\nA,01716000001,{north.package.name}\n")
    batch = ImportBatch.objects.get()
    # A mapping without the package column, or naming a column the file lacks, is refused in words.
    posted = _mapping_post(batch, check="1")
    posted["map_package"] = ""
    assert (
        "no column is mapped to package"
        in client.post(reverse("console:import_batch", args=[batch.pk]), posted).content.decode()
    )
    posted["map_package"] = "Nope"
    assert client.post(reverse("console:import_batch", args=[batch.pk]), posted).status_code == 200
    assert not Subscriber.objects.filter(operator=north.operator, name="A").exists()
    assert client.post(reverse("console:import_undo", args=[batch.pk]), follow=True).status_code == 200
    assert ImportBatch.objects.get().status == ImportBatch.Status.DRAFT
