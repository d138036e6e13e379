from hydra.errors import InstantiationException
from hydra.utils import instantiate as hydra_instantiate


class UserError(Exception):
    """A mistake the user can fix (a config value, a path). The CLI prints its one-sentence message, no traceback."""


def instantiate(node, **kwargs):
    """hydra.utils.instantiate, except that a UserError raised by a `_target_` reaches the caller as itself: Hydra
    wraps every error of a target in an InstantiationException, which the CLI would print as a traceback."""
    try:
        return hydra_instantiate(node, **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        while cause is not None and not isinstance(cause, UserError):
            cause = cause.__cause__
        if cause is None:
            raise
        raise cause from None
