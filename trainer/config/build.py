"""Building a config node: Hydra's instantiate, with a user's mistake reported as one sentence naming the key."""
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from trainer.errors import UserError, first_line


def build(node: DictConfig, key: str, **kwargs: object) -> object:
    """hydra's instantiate, with a user's mistake in `key`'s config reported as one sentence naming it."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        while cause is not None and not isinstance(cause, UserError):  # nested targets wrap it once per level
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise UserError(f"{key} could not be built from {node.get('_target_', 'its config')}: "
                        f"{first_line(error.__cause__ or error)}") from None
