"""The deps, ffmpeg and media Lambda layers, from the directories ``layers/build.py`` fills.

Every function carries deps; only the processing function carries ffmpeg and media (mutagen,
numpy, Pillow), which together are most of Lambda's 250 MB unzipped allowance.

Synthesis stops with the build command when a layer is missing or older than the lock file: an
empty or stale layer would deploy and then fail at import time in AWS.
"""

from __future__ import annotations

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from layers import build

RUNTIME = lambda_.Runtime.PYTHON_3_11
ARCHITECTURE = lambda_.Architecture.X86_64
# Where Lambda puts the ffmpeg layer's bin/ffmpeg (layers are extracted under /opt).
FFMPEG_PATH = "/opt/bin/ffmpeg"


class Layers(Construct):
    def __init__(self, scope: Construct, id_: str) -> None:
        super().__init__(scope, id_)
        build.check()
        self.deps = self._layer("Deps", build.DEPS, "tracklane runtime Python dependencies (no boto3)")
        self.ffmpeg = self._layer("Ffmpeg", build.FFMPEG, "static ffmpeg 7 (x86_64) at /opt/bin/ffmpeg")
        self.media = self._layer("Media", build.MEDIA, "tracklane processing libraries: mutagen, numpy, Pillow")

    def _layer(self, id_: str, layer: build.Layer, description: str) -> lambda_.LayerVersion:
        return lambda_.LayerVersion(
            self,
            id_,
            code=lambda_.Code.from_asset(str(layer.directory)),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description=description,
        )
