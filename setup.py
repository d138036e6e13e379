"""What pyproject.toml cannot say. Every package under trainer/ is found, never listed by hand; conf/ lives at the top
of the repo (it mirrors trainer/) and is shipped inside the package as trainer/conf, so a non-editable install finds
it too (trainer/config/location.py: config_dir). tests/test_packaging.py builds the wheel and checks both."""
from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["trainer", "trainer.*"]), "trainer.conf"], package_dir={"trainer.conf": "conf"})
