"""A presigned URL is a credential: ffmpeg's messages name their input, so they are scrubbed before
any lane can log them."""

from __future__ import annotations

from functions.media import ffmpeg

SIGNED = (
    "http://127.0.0.1:9/uploads/u/original.wav?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAEXAMPLE%2F20261123%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Security-Token=IQoJb3JpZ2luX2VjEXAMPLE&X-Amz-Signature=0123456789abcdef"
)


def test_run_scrubs_the_input_url_from_stderr():
    # Port 9 on loopback refuses at once: ffmpeg fails naming the URL it could not open.
    result = ffmpeg.run(["-i", SIGNED, "-f", "null", "-"], timeout_s=30)
    assert result.returncode != 0
    assert "<url>" in result.stderr
    for secret in ("0123456789abcdef", "AKIAEXAMPLE", "IQoJb3JpZ2luX2VjEXAMPLE"):
        assert secret not in result.stderr


def test_a_fragment_of_a_url_loses_its_credentials_too():
    fragment = SIGNED[40:]  # as a stderr tail that begins mid-URL
    scrubbed = ffmpeg.redact(f"Error opening input {fragment}: refused", [SIGNED + "&other=1"])
    assert "0123456789abcdef" not in scrubbed
    assert "AKIAEXAMPLE" not in scrubbed
    assert "X-Amz-Signature=<redacted>" in scrubbed
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in scrubbed  # not a secret: left for debugging
