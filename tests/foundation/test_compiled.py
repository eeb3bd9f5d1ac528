"""controlplane.compiled.CompiledQuery: a queryset shape compiled once, run with new values."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compute.models import Operation, VirtualMachine
from controlplane.compiled import UNCACHEABLE, CompiledQuery

pytestmark = pytest.mark.django_db


def _operation_with_vm(pk, action):
    return Operation.objects.select_related("vm", "vm__plan", "vm__image", "hypervisor", "project").filter(
        pk=pk, action=action
    )


def _rows(obj):
    """Every concrete column of an instance and of what select_related loaded with it."""
    related = {
        name: {f.attname: getattr(cached, f.attname) for f in cached._meta.concrete_fields}
        for name, cached in sorted(obj._state.fields_cache.items())
        if cached is not None
    }
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}, related


def test_the_same_instances_as_the_queryset_for_each_new_value(user, project, plan, image, simulator):
    # Given an operation on a VM and one on none (a NULL foreign key, its joins empty)
    vm = VirtualMachine.objects.create(
        project=project, owner=user, plan=plan, image=image, hypervisor=simulator, name="c-one", status="active"
    )
    on_vm = Operation.objects.create(vm=vm, project=project, hypervisor=simulator, action="stop")
    on_none = Operation.objects.create(vm=None, project=project, hypervisor=simulator, action="provision")
    query = CompiledQuery(_operation_with_vm, probe=(0, "probe"))

    # When each is read through the compiled shape, the second time without compiling again
    got_first = query.first(on_vm.pk, "stop")
    with CaptureQueriesContext(connection) as queries:
        got_second = query.first(on_none.pk, "provision")
        missing = query.first(on_none.pk, "stop")  # the action is a parameter too

    # Then each equals what Django's own evaluation gives, related objects included
    assert _rows(got_first) == _rows(_operation_with_vm(on_vm.pk, "stop").first())
    assert _rows(got_second) == _rows(_operation_with_vm(on_none.pk, "provision").first())
    assert got_second.vm is None and got_first.vm.image.pk == image.pk and got_first.vm.plan.pk == plan.pk
    assert got_first.hypervisor.name == simulator.name and got_second.project.pk == project.pk
    assert missing is None
    assert len(queries) == 2 and all(str(on_none.pk) in q["sql"] for q in queries.captured_queries)
    assert query._shapes[connection.vendor] is not UNCACHEABLE


def test_a_value_the_field_rewrites_is_never_cached_and_still_right(user, project, plan, image, simulator):
    # Given a shape whose parameter Django rewrites (a name lookup lower-cased into a LIKE pattern)
    vm = VirtualMachine.objects.create(
        project=project, owner=user, plan=plan, image=image, hypervisor=simulator, name="Odd-Name"
    )
    query = CompiledQuery(lambda pk, name: VirtualMachine.objects.filter(pk=pk, name__icontains=name), probe=(0, "x"))

    # When it is run with two different values
    found, other = query.first(vm.pk, "odd-"), query.first(vm.pk, "even")

    # Then the shape is not cached and each answer is the queryset's own
    assert query._shapes[connection.vendor] is UNCACHEABLE
    assert found.pk == vm.pk and other is None


@pytest.mark.django_db(transaction=True)
def test_a_constant_of_the_shape_stays_and_a_locking_shape_needs_a_transaction(user, project, plan, image, simulator):
    vm = VirtualMachine.objects.create(
        project=project, owner=user, plan=plan, image=image, hypervisor=simulator, name="locked"
    )
    op = Operation.objects.create(vm=vm, project=project, hypervisor=simulator, action="stop", state="pending")
    soon = timezone.now() + timedelta(seconds=1)
    query = CompiledQuery(
        lambda pk, due: (
            Operation.objects.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=due), pk=pk)
            .filter(state="pending")
            .select_for_update(of=("self",))
        ),
        probe=(0, soon - timedelta(days=1000)),
    )
    with transaction.atomic():
        assert query.first(op.pk, soon).pk == op.pk
        Operation.objects.filter(pk=op.pk).update(state="running")
        assert query.first(op.pk, soon) is None  # 'pending' is the shape's constant, still applied
    with pytest.raises(TransactionManagementError):
        query.first(op.pk, soon)


def test_a_values_list_page_is_django_s_slice_with_the_statement_compiled_once(user, project, plan, image, simulator):
    # Given VMs with a JSON column, datetimes (one NULL) and a joined name, read as tuples
    for n in range(7):
        VirtualMachine.objects.create(
            project=project, owner=user, plan=plan, image=image, hypervisor=simulator, name=f"page-{n}",
            ip_addresses=[f"192.0.2.{n}"], lost_at=timezone.now() if n % 2 else None,
        )  # fmt: skip
    builds = []

    def build(project_id):
        builds.append(project_id)
        return VirtualMachine.objects.filter(project_id=project_id).values_list(
            "id", "name", "ip_addresses", "lost_at", "plan__name"
        )

    query = CompiledQuery(build, probe=(-1,))

    # When pages are read, the later ones without building or compiling the queryset again
    pages = [query.rows(project.pk, offset=offset, limit=3) for offset in (0, 3, 6, 9)]
    with CaptureQueriesContext(connection) as queries:
        again = query.rows(project.pk, offset=3, limit=3)

    # Then each page is Django's own slice, converters applied (the JSON column is a list)
    assert pages == [list(build(project.pk).order_by("name")[offset : offset + 3]) for offset in (0, 3, 6, 9)]
    assert again == pages[1] and pages[0][0][2] == ["192.0.2.0"] and pages[3] == []
    assert builds.count(project.pk) == 1 + 4 and builds.count(-1) == 1  # compiled once; the other 4: the check
    assert len(queries) == 1 and queries.captured_queries[0]["sql"].endswith("LIMIT 3 OFFSET 3")


def test_a_values_list_whose_tuples_django_reorders_is_evaluated_as_django_does(user, project, plan, image, simulator):
    VirtualMachine.objects.create(project=project, owner=user, plan=plan, image=image, hypervisor=simulator, name="r")
    named = VirtualMachine.objects.annotate(plan_name=F("plan__name"))
    query = CompiledQuery(lambda pk: named.filter(pk__gte=pk).values_list("plan_name", "name"), probe=(10**9,))
    assert query.rows(0, offset=0, limit=5) == [(plan.name, "r")]  # the annotation first, as asked
    assert query._shapes[connection.vendor] is UNCACHEABLE
