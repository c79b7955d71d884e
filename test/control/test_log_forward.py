"""control.log_forward: maps_vla's logging records reach another logger API (rclpy's in the nodes) at their level."""

from __future__ import annotations

import logging

from maps_vla.control.log_forward import forward_logging


class Loggers:
    """get_logger(name) -> an object with rclpy's method names that records (name, method, text)."""

    def __init__(self):
        self.lines: list[tuple[str, str, str]] = []

    def __call__(self, name):
        owner = self

        class Target:
            def __getattr__(self, method):
                return lambda text: owner.lines.append((name, method, text))
        return Target()


def test_records_are_forwarded_at_their_severity_with_tracebacks_and_undone():
    """In a ROS node the policy_lost warning printed as bare text and INFO lines (episode outcomes) were lost."""
    loggers = Loggers()
    package = logging.getLogger('maps_vla')
    before = package.propagate, package.level, list(package.handlers)
    undo = forward_logging(loggers)
    log = logging.getLogger('maps_vla.control.safety')
    log.propagate = True  # loggers made after `import launch` (test_launch) are LaunchLoggers, which do not propagate
    try:
        log.debug('not shown')
        log.info('episode %d: %s', 0, 'success')
        log.warning('the policy is lost')
        try:
            raise RuntimeError('boom')
        except RuntimeError:
            log.exception('request failed')
        log.critical('stop')
    finally:
        undo()
    assert [line[:2] for line in loggers.lines] == [('maps_vla.control.safety', m) for m in
                                                     ('info', 'warning', 'error', 'fatal')]
    assert loggers.lines[0][2] == 'episode 0: success'
    assert 'Traceback' in loggers.lines[2][2] and 'RuntimeError: boom' in loggers.lines[2][2]
    log.warning('after undo')
    assert len(loggers.lines) == 4
    assert (package.propagate, package.level, package.handlers) == before
