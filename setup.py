"""Packaging for mmaction-gblend, a multi-modal training plugin for mmaction2."""
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_requirements(path: str) -> list:
    """Read requirement lines, skipping comments and blank lines."""
    with open(osp.join(HERE, path), encoding='utf-8') as f:
        lines = (line.split('#', 1)[0].strip() for line in f)
        return [line for line in lines if line]


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(HERE, 'mmaction_gblend', 'version.py'), encoding='utf-8') as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='mmaction-gblend',
    version=read_version(),
    description='Gradient Blending and modality balancing for multi-modal '
    'video classification in mmaction2',
    long_description=open(osp.join(HERE, 'README.md'), encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'benchmarks')),
    include_package_data=True,
    python_requires='>=3.8',
    install_requires=read_requirements('requirements/runtime.txt'),
    extras_require=dict(tests=read_requirements('requirements/tests.txt')),
    license='Apache License 2.0',
    zip_safe=False,
)
