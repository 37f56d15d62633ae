"""Every model of the kernel, imported in one place so metadata and migrations see them all."""

from shequ.core.alarms.models import Alarm, AlarmEvent, AlarmSubscription
from shequ.core.cases.models import Case, CaseAttachment, CaseClass, CaseStep, RoutingRule
from shequ.core.changelog import ChangeLog
from shequ.core.iam import audit as _audit  # noqa: F401  (registers the audit listener of writes)
from shequ.core.iam import pii as _pii  # noqa: F401  (registers the PII listener)
from shequ.core.iam.models import ApiToken, AuditLog, AuthSession, RolePermission, User
from shequ.core.iot.models import (
    DeadLetter,
    Device,
    DeviceCommand,
    DeviceState,
    IngestMark,
    PlaceState,
    PlaceStateChange,
    Telemetry,
    TelemetryRollup,
    TwinChange,
)
from shequ.core.notify.models import Notification, OutboundMessage, Webhook, WebhookDelivery
from shequ.core.places.models import Place, Tenant
from shequ.core.registry import tags as _tags  # noqa: F401  (registers the tag recompute listeners)
from shequ.core.registry.models import (
    Facility,
    House,
    Household,
    ImportBatch,
    Membership,
    Organisation,
    Person,
    Situation,
    SourceFact,
    Tag,
    Tagging,
)
from shequ.core.rules.models import Rule, RuleState, RuleVersion
from shequ.db import Base

metadata = Base.metadata


def _scenario_models() -> None:
    """Each installed scenario's models join the metadata (found through the entry points)."""
    from importlib import import_module

    from shequ.core.plugins import load_scenarios

    for spec in load_scenarios().scenarios.values():
        if spec.models_module:
            import_module(spec.models_module)


_scenario_models()

__all__ = [
    "Alarm", "AlarmEvent", "AlarmSubscription", "Case", "CaseAttachment", "CaseClass", "CaseStep",
    "Notification", "OutboundMessage", "RoutingRule", "Rule", "RuleState", "RuleVersion", "Webhook",
    "WebhookDelivery",
    "ApiToken", "AuditLog", "AuthSession", "ChangeLog", "DeadLetter", "Device", "DeviceCommand",
    "DeviceState", "Facility", "House", "IngestMark", "PlaceState", "PlaceStateChange", "Telemetry",
    "TelemetryRollup", "TwinChange",
    "Household", "ImportBatch", "Membership", "Organisation", "Person", "Place", "RolePermission",
    "Situation",
    "SourceFact", "Tag", "Tagging", "Tenant", "User", "metadata",
]
