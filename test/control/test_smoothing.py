import math

import numpy as np
import pytest

from maps_vla.control.chunk import ActionChunk
from maps_vla.control.smoothing import (SMOOTHING_METHODS, ChunkSmoother, HoldMode, Interpolation, SmootherConfig,
                                        SmootherState, SmoothingMethod, ensemble_weights)

HZ = 100.0
DT = 1.0 / HZ


def _run(smoother, chunks_at, t_end):
    """Tick at HZ from 0 to t_end; chunks_at maps tick index -> chunk delivered before that tick."""
    outs = []
    for k in range(int(round(t_end * HZ))):
        if k in chunks_at:
            smoother.on_chunk(chunks_at[k])
        out = smoother.tick(k * DT)
        if out is not None:
            outs.append(out)
    return outs


def _derivatives(outs, dims):
    y = np.array([o.command for o in outs])[:, dims]
    v = np.diff(y, axis=0) / DT
    a = np.diff(v, axis=0) / DT
    j = np.diff(a, axis=0) / DT
    return y, v, a, j


def test_registry_has_every_method():
    assert SMOOTHING_METHODS.names() == sorted(m.value for m in SmoothingMethod)
    with pytest.raises(ValueError, match="Did you mean 'crossfade'"):
        SMOOTHING_METHODS.get('crosfade')


def test_act_weights_by_hand():
    m = 0.5
    w = ensemble_weights(3, m)
    z = 1 + math.exp(-0.5) + math.exp(-1.0)
    assert w == pytest.approx([1 / z, math.exp(-0.5) / z, math.exp(-1.0) / z])
    s = ChunkSmoother(SmootherConfig(method=SmoothingMethod.TEMPORAL_ENSEMBLE, ensemble_m=m))
    for k, value in enumerate([1.0, 2.0, 4.0]):  # oldest first, all covering t = 0.02
        s.on_chunk(ActionChunk(0.0, np.full((10, 1), value), 0.1))
        out = s.tick(k * DT)
    assert out.command[0] == pytest.approx((1.0 + 2.0 * math.exp(-0.5) + 4.0 * math.exp(-1.0)) / z, rel=1e-12)
    # m < 0 favours the newest chunk, m = 0 is the plain mean
    s0 = ChunkSmoother(SmootherConfig(method=SmoothingMethod.TEMPORAL_ENSEMBLE, ensemble_m=0.0))
    for k, value in enumerate([1.0, 2.0, 6.0]):
        s0.on_chunk(ActionChunk(0.0, np.full((10, 1), value), 0.1))
        out = s0.tick(k * DT)
    assert out.command[0] == pytest.approx(3.0)


def test_ensemble_drops_chunks_that_no_longer_cover_the_tick():
    s = ChunkSmoother(SmootherConfig(method=SmoothingMethod.TEMPORAL_ENSEMBLE, ensemble_m=0.0,
                                     interpolation=Interpolation.STEP))
    s.on_chunk(ActionChunk(0.0, np.full((2, 1), 10.0), 0.1))  # covers [0, 0.2)
    s.on_chunk(ActionChunk(0.05, np.full((5, 1), 20.0), 0.1))  # covers [0.05, 0.55)
    outs = _run(s, {}, 0.3)
    assert outs[10].command[0] == pytest.approx(15.0)  # t = 0.10: both
    assert outs[25].command[0] == pytest.approx(20.0)  # t = 0.25: only the second


@pytest.mark.parametrize('method', list(SmoothingMethod))
@pytest.mark.parametrize('offset, expected', [(0.3, 3.0), (0.35, 3.5), (0.0, 0.0)])
def test_delay_compensation_starts_at_the_right_index(method, offset, expected):
    now = 5.0
    s = ChunkSmoother(SmootherConfig(method=method, interpolation=Interpolation.LINEAR))
    s.on_chunk(ActionChunk(now - offset, np.arange(10.0)[:, None], 0.1))
    assert s.tick(now).command[0] == pytest.approx(expected)


def test_a_chunk_whose_actions_have_all_passed_is_not_executed():
    s = ChunkSmoother(SmootherConfig())
    s.on_chunk(ActionChunk(0.0, np.ones((5, 1)), 0.1))  # ends at 0.5
    assert s.tick(0.6) is None


@pytest.mark.parametrize('method', list(SmoothingMethod))
@pytest.mark.parametrize('interpolation', list(Interpolation))
def test_commands_respect_velocity_acceleration_and_jerk_limits(method, interpolation):
    rng = np.random.default_rng(1)
    vmax, amax, jmax = np.array([0.5, 1.0]), np.array([2.0, 5.0]), np.array([40.0, 100.0])
    cfg = SmootherConfig(method=method, interpolation=interpolation, control_hz=HZ, max_velocity=tuple(vmax),
                         max_acceleration=tuple(amax), max_jerk=tuple(jmax), gripper_index=2, hold_after=0.3)
    chunks = {}
    for n, k in enumerate(range(0, 300, 10)):  # 10 Hz chunks that disagree: random offsets and noise
        if 200 <= k < 250:
            continue  # a gap: the smoother holds and then resumes
        t = k * DT - 0.04
        times = t + 0.1 * np.arange(12)
        base = np.stack([0.4 * np.sin(times), 0.3 * np.cos(2 * times)], axis=1)
        actions = base + rng.normal(0, 0.1, 2) + rng.normal(0, 0.02, base.shape)
        grip = (rng.random(12) > 0.5).astype(float)
        chunks[k] = ActionChunk(t, np.column_stack([actions, grip]), 0.1)
    outs = _run(ChunkSmoother(cfg), chunks, 3.2)
    _, v, a, j = _derivatives(outs, [0, 1])
    tol = 1 + 1e-9
    assert np.all(np.abs(v) <= vmax * tol), np.abs(v).max(axis=0)
    assert np.all(np.abs(a) <= amax * tol), np.abs(a).max(axis=0)
    assert np.all(np.abs(j) <= jmax * tol), np.abs(j).max(axis=0)
    assert {o.state for o in outs} == {SmootherState.TRACKING, SmootherState.HOLDING}
    assert set(np.unique([o.command[2] for o in outs])) <= {0.0, 1.0}  # gripper thresholded, never blended


def _seam_steps(method, limits=None):
    cfg = SmootherConfig(method=method, interpolation=Interpolation.LINEAR, blend_window=0.1, **(limits or {}))
    s = ChunkSmoother(cfg)
    chunks = {0: ActionChunk(0.0, np.zeros((20, 1)), 0.1), 50: ActionChunk(0.45, np.ones((20, 1)), 0.1)}
    outs = _run(s, chunks, 1.0)
    y = np.array([o.command[0] for o in outs])
    seam = [i for i, o in enumerate(outs) if o.seam]
    return np.abs(np.diff(y)), seam, y


def test_crossfade_bounds_the_step_at_a_seam_where_chunks_disagree():
    steps, seam, y = _seam_steps(SmoothingMethod.NONE)
    assert steps.max() == pytest.approx(1.0)  # no blending: the command jumps by the disagreement
    steps, seam, y = _seam_steps(SmoothingMethod.CROSSFADE)
    assert seam == [0, 50]
    assert steps.max() <= 1.0 / (0.1 * HZ) + 1e-9  # the jump is spread over the 0.1 s blend window
    assert y[49] == 0.0 and y[60:].min() == pytest.approx(1.0)  # starts after the seam, finishes in the window
    steps, _, _ = _seam_steps(SmoothingMethod.TEMPORAL_ENSEMBLE, dict(max_velocity=(2.0,), max_acceleration=(50.0,)))
    assert steps.max() <= 2.0 * DT + 1e-12  # TE jumps too, but the limiter bounds every tick


def test_hold_keep_decelerates_to_rest_and_keeps_position():
    cfg = SmootherConfig(max_velocity=(1.0,), max_acceleration=(4.0,), max_jerk=(80.0,), hold_after=0.2)
    s = ChunkSmoother(cfg)
    ramp = ActionChunk(0.0, (0.5 * 0.1 * np.arange(30))[:, None], 0.1)  # 0.5 units/s for 3 s
    outs = _run(s, {0: ramp}, 1.5)  # no further chunk: hold after 0.2 s
    states = [o.state for o in outs]
    first_hold = states.index(SmootherState.HOLDING)
    assert first_hold == 21  # 0.21 s > hold_after
    y, v, a, j = _derivatives(outs, [0])
    assert np.abs(a).max() <= 4.0 + 1e-9 and np.abs(j).max() <= 80.0 + 1e-9
    assert abs(outs[-1].velocity[0]) < 1e-12 and np.ptp(y[-30:]) < 1e-12  # at rest, position kept


def test_hold_zero_ramps_delta_commands_to_zero():
    cfg = SmootherConfig(max_velocity=(5.0,), max_acceleration=(50.0,), hold_after=0.3, hold_mode=HoldMode.ZERO,
                         gripper_index=1)
    s = ChunkSmoother(cfg)
    chunk = ActionChunk(0.0, np.tile([0.3, 1.0], (20, 1)), 0.1)
    outs = _run(s, {0: chunk}, 0.8)
    assert outs[0].command[0] <= 50.0 * DT * DT + 1e-12 and outs[0].command[1] == 1.0  # delta from rest
    assert outs[25].command[0] == pytest.approx(0.3)
    assert outs[-1].state is SmootherState.HOLDING and outs[-1].command[0] == 0.0
    assert outs[-1].command[1] == 1.0  # the gripper keeps its state while holding


def test_cubic_interpolation_passes_through_steps_and_is_c1():
    t = np.arange(8) * 0.1
    actions = np.stack([np.sin(3 * t), t ** 3], axis=1)
    s = ChunkSmoother(SmootherConfig(interpolation=Interpolation.CUBIC, method=SmoothingMethod.NONE, hold_after=5))
    s.on_chunk(ActionChunk(0.0, actions, 0.1))
    times = np.arange(0, 0.7, 0.001)
    y = np.array([s.tick(ti).command for ti in times])
    knots = np.rint(t[:7] / 0.001).astype(int)
    assert y[knots] == pytest.approx(actions[:7], abs=1e-12)
    slope = np.diff(y, axis=0) / 0.001
    for k in knots[1:-1]:  # slopes left and right of an interior knot agree (C1)
        assert slope[k - 1] == pytest.approx(slope[k], abs=0.02)
    lin = ChunkSmoother(SmootherConfig(interpolation=Interpolation.LINEAR, method=SmoothingMethod.NONE, hold_after=5))
    lin.on_chunk(ActionChunk(0.0, actions, 0.1))
    ylin = np.array([lin.tick(ti).command for ti in times])
    lslope = np.diff(ylin, axis=0) / 0.001
    assert np.abs(lslope[knots[2] - 1] - lslope[knots[2]]).max() > 0.1  # linear is only C0 there


def test_crossfade_after_reset_starts_from_the_initial_command():
    s = ChunkSmoother(SmootherConfig(blend_window=0.1))
    s.reset(initial=np.array([2.0]))
    outs = _run(s, {0: ActionChunk(0.0, np.zeros((10, 1)), 0.1)}, 0.2)
    y = [o.command[0] for o in outs]
    assert y[0] == pytest.approx(2.0) and y[5] == pytest.approx(1.0) and y[10] == pytest.approx(0.0)


def test_validation():
    with pytest.raises(ValueError, match='control_hz must be in'):
        SmootherConfig(control_hz=0)
    with pytest.raises(ValueError, match='max_jerk values must be > 0'):
        SmootherConfig(max_jerk=(0.0,))
    s = ChunkSmoother(SmootherConfig(max_velocity=(1.0, 2.0, 3.0)))
    with pytest.raises(ValueError, match=r'max_velocity has 3 values for 2 action dims \(give 1, 2\)'):
        s.on_chunk(ActionChunk(0.0, np.zeros((3, 2)), 0.1))
    s = ChunkSmoother(SmootherConfig())
    s.on_chunk(ActionChunk(0.0, np.zeros((3, 2)), 0.1))
    with pytest.raises(ValueError, match='chunk has 3 action dims, the smoother runs with 2'):
        s.on_chunk(ActionChunk(0.0, np.zeros((3, 3)), 0.1))
    with pytest.raises(ValueError, match=r'shape \(K>=1, A>=1\)'):
        ActionChunk(0.0, np.zeros(3), 0.1)


@pytest.mark.parametrize('limits', [(1.0, 5.0, 100.0), (0.5, 2.0, 20.0), (math.inf, 5.0, 50.0), (1.0, 5.0, math.inf)])
@pytest.mark.parametrize('step', [1.0, 0.05, 0.001])
def test_step_response_settles_without_limit_cycle(limits, step):
    vmax, amax, jmax = limits
    cfg = SmootherConfig(method=SmoothingMethod.NONE, max_velocity=(vmax,), max_acceleration=(amax,),
                         max_jerk=(jmax,), hold_after=10.0)
    s = ChunkSmoother(cfg)
    s.reset(initial=np.zeros(1))
    outs = _run(s, {0: ActionChunk(0.0, np.full((60, 1), step), 0.1)}, 4.0)
    y = np.array([o.command[0] for o in outs])
    assert y.max() - step <= max(0.01 * step, 1e-4)  # overshoot under 1 % (or a few jerk quanta)
    assert np.abs(y[-50:] - step).max() <= step * 1e-3  # settled, no oscillation


def test_a_chunk_that_does_not_fit_is_rejected_every_time_and_never_crashes_a_tick():
    # an ee_delta smoother (gripper at 6) fed a 2-dim chunk: the gripper index does not fit
    s = ChunkSmoother(SmootherConfig(gripper_index=6))
    for _ in range(2):  # the second bad chunk must be refused too (it used to pass: _dim was set before the check)
        with pytest.raises(ValueError, match='gripper_index 6 is outside the 2 action dims'):
            s.on_chunk(ActionChunk(0.0, np.zeros((5, 2)), 0.1))
    assert s.rejected_chunks == 2 and s.tick(0.0) is None
    s.on_chunk(ActionChunk(0.0, np.zeros((5, 7)), 0.1))  # a chunk that fits still works afterwards
    assert s.tick(0.01).command.shape == (7,)
    with pytest.raises(ValueError, match='limits|max_velocity has 3 values'):
        ChunkSmoother(SmootherConfig(max_velocity=(1.0, 1.0, 1.0))).on_chunk(ActionChunk(0.0, np.zeros((5, 7)), 0.1))


def test_an_overflowing_reference_drops_the_chunks_and_holds_finite():
    s = ChunkSmoother(SmootherConfig(interpolation=Interpolation.CUBIC, max_velocity=(1.0,),
                                     max_acceleration=(10.0,), max_jerk=(100.0,)))
    s.on_chunk(ActionChunk(0.0, np.zeros((50, 1)), 0.1))
    outs = [s.tick(k * DT) for k in range(5)]
    huge = np.where(np.arange(50) % 2 == 0, 1e308, -1e308)[:, None]  # finite, but its cubic tangents overflow
    s.on_chunk(ActionChunk(0.0, huge, 0.1))
    outs += [s.tick(k * DT) for k in range(5, 40)]
    assert all(np.all(np.isfinite(o.command)) and np.all(np.isfinite(o.velocity)) for o in outs)
    assert outs[5].state is SmootherState.REJECTED and s.rejected_ticks == 1
    assert outs[-1].state is SmootherState.HOLDING  # the bad chunks are gone; the smoother holds
    s.on_chunk(ActionChunk(0.4, np.full((5, 1), 0.1), 0.1))
    assert s.tick(0.4).state is SmootherState.TRACKING
