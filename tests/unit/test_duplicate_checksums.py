"""Which S3 ETags are content checksums (functions.domain.intake.duplicates)."""

from functions.domain.intake import duplicates


def test_a_single_put_etag_is_the_md5_of_the_bytes():
    assert duplicates.checksum('"9B2CF535F27731C974343645A3985328"') == "md5:9b2cf535f27731c974343645a3985328"


def test_a_multipart_or_odd_etag_is_not_a_content_checksum():
    for etag in ('"9b2cf535f27731c974343645a3985328-3"', "", '"xyz"', '"9b2cf535f27731c974343645a398532"'):
        assert duplicates.checksum(etag) is None, etag
