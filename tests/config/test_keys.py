"""Keys a command line names that the config does not have: the key meant, the options that have it, or how to pass
a keyword to a target; through the real CLI for what Hydra refuses before losslab's code runs."""
import pytest

from tests.conftest import compose_config, run, run_cli
from trainer.config.keys import closest_key, declared_keys, unknown_key
from trainer.errors import UserError


@pytest.mark.parametrize("chosen,override,says", [
    ([], "trainer.epoch=1", "trainer.epoch=1 names trainer.epoch, which losslab does not read: use trainer.epochs=1"),
    ([], "optimizer.learning_rate=0.1", "which losslab does not read: use optimizer.lr=0.1"),
    ([], "optimizer.wd=0.1", "which losslab does not read: use optimizer.weight_decay=0.1"),
    ([], "los=ce", "los=ce names los, which losslab does not read: use loss=ce"),
    ([], "epochs=3", "use trainer.epochs=3"),
    ([], "data.batchsize=8", "use data.batch_size=8"),
    ([], "data.root=new/", "data.root=new/ names data.root, which data=digits does not have: it is a key of "
                           "data=cifar10, data=fashion_mnist, data=image_folder and data=mnist, so add the one you "
                           "mean (`data=OPTION data.root=new/`)"),
    (["model=mlp"], "model.kernel_size=3", "which model=mlp does not have: it is a key of model=small_cnn, so add"),
    ([], "optimizer.eps=1e-6", "optimizer.eps=1e-6 names optimizer.eps, which optimizer=adam does not have: to pass "
                               "it to torch.optim.Adam as a keyword, write +optimizer.eps=1e-6"),
    ([], "trainer.zzz=1", "trainer.zzz=1 names trainer.zzz, which losslab does not read: remove it"),
])
def test_a_key_the_config_lacks_is_named_with_the_key_meant(chosen, override, says):
    assert says in unknown_key(compose_config(chosen), override, added=False)


def test_the_closest_key_is_a_sibling_before_a_key_elsewhere():
    cfg = compose_config()
    assert closest_key(cfg, "data.num_worker") == "data.num_workers"
    assert closest_key(cfg, "optimizer.eps") is None  # not optimizer.betas: the shared prefix does not count
    assert closest_key(cfg, "hydra_like") is None


def test_the_keys_each_option_declares_are_read_from_conf():
    data = declared_keys("data")
    assert "root" in data["image_folder"] and "source.root" in data["image_folder"] and "root" not in data["digits"]
    assert declared_keys("trainer") == {} and declared_keys("") == {}


def test_an_added_key_of_another_option_names_the_options_that_have_it(tmp_path):
    with pytest.raises(UserError, match=r"^\+data.root=x adds data.root, which data=digits does not have: .*"
                                        r"\(`data=OPTION data.root=x`\)$"):
        run(["+data.root=x", "trainer.progress=false"], tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args,says", [
    (["optimizer.learning_rate=0.1"], "optimizer.learning_rate=0.1 names optimizer.learning_rate, which losslab does "
                                      "not read: use optimizer.lr=0.1"),
    (["los=ce"], "los=ce names los, which losslab does not read: use loss=ce"),
    # the README's example of evaluating on new images, without the data option that has data.root
    (["mode=eval", "ckpt_path=run/checkpoints/best.pt", "data.root=new_test_images/"],
     "data.root=new_test_images/ names data.root, which data=digits does not have: it is a key of data=cifar10, "
     "data=fashion_mnist, data=image_folder and data=mnist, so add the one you mean "
     "(`data=OPTION data.root=new_test_images/`)"),
    (["-m", "trainer.epoch=1,2"], "trainer.epoch=1 names trainer.epoch, which losslab does not read: use "
                                  "trainer.epochs=1"),
])
def test_the_cli_names_the_key_meant_in_one_sentence_and_writes_nothing(tmp_path, args, says):
    result = run_cli(tmp_path, *args)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {says}" and result.stdout == ""
    assert not (tmp_path / "outputs").exists()  # nothing behind, not even a sweep's multirun.yaml    assert not list(tmp_path.rglob("*.pt")) and not list(tmp_path.rglob("status.json"))


def test_other_hydra_errors_keep_hydras_own_message(tmp_path):
    result = run_cli(tmp_path, "loss=nope")
    assert result.returncode == 2 and "Could not find 'loss/nope'" in result.stderr and "Traceback" not in result.stderr
    assert "error:" not in result.stderr
