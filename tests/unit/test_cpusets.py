"""The rig and the system get disjoint cores on a host with two or more, as configured."""

import pytest

from wsrig.cpusets import CpuPlan, plan_cpus


def test_auto_splits_two_cores_one_each():
    """2 cores: the rig takes core 0, the system core 1."""
    plan = plan_cpus(2, {})
    assert plan.rig == {0} and plan.system == {1} and plan.describe()["rig"] == "0"


def test_auto_splits_four_cores_in_halves():
    """4 cores: 0-1 for the rig, 2-3 for the system."""
    plan = plan_cpus(4, {})
    assert plan.rig == {0, 1} and plan.system == {2, 3}


def test_one_core_is_not_pinned():
    """1 core: nothing to split, and the plan says so."""
    plan = plan_cpus(1, {})
    assert plan.rig is None and "1 core" in plan.note


def test_off_disables_pinning():
    """RIG__CPUS_RIG=off: no pinning."""
    assert plan_cpus(8, {"RIG__CPUS_RIG": "off"}).rig is None


def test_explicit_sets_and_ranges():
    """Explicit sets and ranges are read as given."""
    plan = plan_cpus(8, {"RIG__CPUS_RIG": "0-2", "RIG__CPUS_SYSTEM": "4,5"})
    assert plan.rig == {0, 1, 2} and plan.system == {4, 5} and CpuPlan.text(plan.system) == "4,5"


def test_overlap_and_missing_cores_are_clear_errors():
    """Overlapping sets, or cores the host lacks, are errors that name them."""
    with pytest.raises(ValueError, match="overlap"):
        plan_cpus(4, {"RIG__CPUS_RIG": "0-1", "RIG__CPUS_SYSTEM": "1-2"})
    with pytest.raises(ValueError, match="does not have"):
        plan_cpus(2, {"RIG__CPUS_RIG": "3"})
