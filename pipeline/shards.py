"""The corpus folder's old module name: everything now lives in pipeline.corpus."""

from .corpus import *  # noqa: F401,F403
from .corpus import META_PREFIX, SCHEMA_VERSION  # noqa: F401
