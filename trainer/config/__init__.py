"""losslab's config: where conf/ lives and what it declares (`location`), the checks a composed config passes before
any work (`checks`; the keys a command line names in `keys`, every value's rule in `values`), configs read from files
treated as data (`stored`), building a node (`build`), and overrides as users type them (`overrides`: paths quoted
for Hydra's grammar, sweep job folders named by their overrides). Pure Python and Hydra: the CLI uses it before torch
is loaded."""
from trainer.config.build import build
from trainer.config.checks import validate
from trainer.config.keys import check_added_keys, misspelt_override
from trainer.config.location import (config_dir, declared_groups, declared_keys, declared_targets, option_of,
                                     targets_in)
from trainer.config.overrides import as_typed, job_dir_name
from trainer.config.stored import (MOVED_TARGETS, SPECIAL_KEYS, check_recorded_override, check_stored, leaves,
                                   override_key, with_moved_targets)

__all__ = ["MOVED_TARGETS", "SPECIAL_KEYS", "as_typed", "build", "check_added_keys", "check_recorded_override",
           "check_stored", "config_dir", "declared_groups", "declared_keys", "declared_targets", "job_dir_name",
           "leaves", "misspelt_override", "option_of", "override_key", "targets_in", "validate",
           "with_moved_targets"]
