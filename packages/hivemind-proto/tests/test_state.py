"""Every cell of the transition table: Role x State x Input."""

from __future__ import annotations

import itertools

import pytest
from hivemind_proto import LocalProtocolError, RemoteProtocolError, Role, State
from hivemind_proto._state import CLOSABLE, TRANSITIONS, Input, allowed_states, is_local

CELLS = list(itertools.product(Role, State, Input))


@pytest.mark.parametrize(("role", "state", "inp"), CELLS, ids=lambda v: v.value)
def test_every_cell(role: Role, state: State, inp: Input) -> None:
    listed = TRANSITIONS[role].get(state, {}).get(inp)
    if inp is Input.CLOSE:
        listed = frozenset({State.CLOSED}) if state in CLOSABLE else None
    if listed is not None:
        assert allowed_states(role, state, inp) == listed
        return
    expected = LocalProtocolError if is_local(inp) else RemoteProtocolError
    with pytest.raises(expected) as info:
        allowed_states(role, state, inp)
    assert type(info.value) is expected
    assert role.value in str(info.value)
    assert state.value in str(info.value)


def test_terminal_states_accept_nothing() -> None:
    for role, inp in itertools.product(Role, Input):
        for state in (State.CLOSED, State.ERROR):
            with pytest.raises((LocalProtocolError, RemoteProtocolError)):
                allowed_states(role, state, inp)


def test_every_listed_outcome_is_a_state_the_role_can_be_in() -> None:
    for role, table in TRANSITIONS.items():
        reachable = {State.IDLE if role is Role.HUB else State.AWAITING_HELLO}
        for _ in range(len(State)):
            for state in list(reachable):
                for outcomes in table.get(state, {}).values():
                    reachable |= outcomes
        assert set(table) <= reachable, f"{role}: unreachable states have rules"
        assert State.READY in reachable


def test_local_and_remote_inputs_are_split_by_name() -> None:
    assert {i for i in Input if is_local(i)} == {
        Input.START,
        Input.SEND_MESSAGE,
        Input.SEND_REKEY,
        Input.CLOSE,
    }
