"""Writes for registered agents: registration, tokens, proposals and their review, escalations.

An agent never edits a record. It proposes; a person accepts (through the record services, so
the revision, search data and staleness evidence are written as for any edit), edits then
accepts, or rejects with a note the agent can read back.
"""

from apps.agents.services.checks import overlaps
from apps.agents.services.escalation import (
    escalation_claim,
    escalation_contact,
    escalation_create,
    escalation_unclaim,
)
from apps.agents.services.proposals import (
    proposal_flag_outdated,
    proposal_new_record,
    proposal_update,
)
from apps.agents.services.registration import (
    agent_create,
    agent_set_disabled,
    agent_token_create,
    agent_token_revoke,
    agent_update,
)
from apps.agents.services.review import can_review, proposal_accept, proposal_reject

__all__ = [
    "agent_create",
    "agent_set_disabled",
    "agent_token_create",
    "agent_token_revoke",
    "agent_update",
    "can_review",
    "escalation_claim",
    "escalation_contact",
    "escalation_create",
    "escalation_unclaim",
    "overlaps",
    "proposal_accept",
    "proposal_flag_outdated",
    "proposal_new_record",
    "proposal_reject",
    "proposal_update",
]
