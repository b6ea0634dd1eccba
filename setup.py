"""hfspider: mirror Hugging Face Hub models (metadata and files) into content-addressed storage."""

from setuptools import find_packages, setup

setup(
    name="hfspider",
    version="0.1.0",
    description=__doc__,
    python_requires=">=3.11",
    packages=find_packages(include=["hfspider", "hfspider.*"]) + ["hfspider.default_config"],
    # The TOML files in pipelines_config/ are the one source of setting defaults; they ship
    # inside the package (also in scrapyd eggs) as hfspider.default_config.
    package_dir={"hfspider.default_config": "pipelines_config"},
    package_data={"hfspider": ["schema/*.json"], "hfspider.default_config": ["*.toml"]},
    include_package_data=False,
    install_requires=[
        "scrapy==2.19.*",
        "scrapy-redis==0.9.1",
        "itemadapter>=0.10",
        "pyarrow>=26",
        "pandas>=2.2",
        "duckdb>=1.2",
        "multiformats>=0.3.1",
        "mmh3>=5.1",
        "jsonschema>=4.26",
        "jsonschema-rs>=0.29",
        "pyyaml>=6.0",
        "orjson>=3.10",
        "redis>=5",
        "aiohttp>=3.13",
        "cryptography>=42",
    ],
    extras_require={
        "deploy": ["scrapyd==1.6.0", "scrapyd-client==2.0.3", "setuptools<81"],
        "test": [
            "pytest>=9",
            "pytest-timeout>=2.3",
            "ruff>=0.8",
            "huggingface_hub==2.4.0",
            "betamax>=0.9",
            "cryptography>=42",
            "scrapyd==1.6.0",
            "scrapyd-client==2.0.3",
            "setuptools<81",
        ],
    },
    entry_points={
        "console_scripts": ["hfspider = hfspider.cli:main"],
        "scrapy": ["settings = hfspider.settings"],
    },
)
