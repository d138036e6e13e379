from tests.conftest import compose_config, options


def test_default_config_is_digits_small_cnn_ce_adam():
    cfg = compose_config()
    choices = (cfg.data.source._target_, cfg.model._target_, cfg.loss.criterion._target_, cfg.optimizer._target_)
    assert choices == ("trainer.data.digits", "trainer.models.SmallCNN", "torch.nn.CrossEntropyLoss", "torch.optim.Adam")
    assert cfg.scheduler.build is None


def test_shapes_and_class_counts_flow_from_data_to_model_and_loss():
    cfg = compose_config(["data=synthetic", "data.channels=1", "data.image_size=12", "data.num_classes=4"])
    assert list(cfg.model.in_shape) == [1, 12, 12]
    assert cfg.model.num_classes == 4 and cfg.loss.num_classes == 4
