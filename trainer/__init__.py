"""losslab: a config-driven training CLI to see what a loss, an optimizer or a frozen backbone does."""
