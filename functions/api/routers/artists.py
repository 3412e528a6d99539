"""``/v1/artists/me``: the caller's artist profile (required before uploading)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import Field

from functions.api.auth import Principal, current_user
from functions.api.models import CamelModel, CamelResponse, iso
from functions.domain import artists
from functions.errors import ArtistProfileNotFound

router = APIRouter(prefix="/v1/artists", tags=["artists"])


class ArtistProfileRequest(CamelModel):
    handle: str = Field(min_length=3, max_length=63, pattern=artists.HANDLE_PATTERN.pattern.replace("a-z", "a-zA-Z"))
    display_name: str | None = Field(default=None, min_length=1, max_length=100)


class ArtistProfileResponse(CamelResponse):
    user_id: str
    handle: str
    display_name: str | None
    created_at: str
    updated_at: str


def _response(artist: artists.Artist) -> ArtistProfileResponse:
    return ArtistProfileResponse(
        user_id=artist.user_id,
        handle=artist.handle,
        display_name=artist.display_name,
        created_at=iso(artist.created_at) or "",
        updated_at=iso(artist.updated_at) or "",
    )


@router.put("/me", response_model=ArtistProfileResponse, response_model_by_alias=True)
def put_my_profile(
    body: ArtistProfileRequest, user: Annotated[Principal, Depends(current_user)]
) -> ArtistProfileResponse:
    """Create or update the caller's profile. Handles are unique (case-insensitive)."""
    return _response(artists.upsert(user.user_id, handle=body.handle, display_name=body.display_name))


@router.get("/me", response_model=ArtistProfileResponse, response_model_by_alias=True)
def get_my_profile(user: Annotated[Principal, Depends(current_user)]) -> ArtistProfileResponse:
    artist = artists.find(user.user_id)
    if artist is None:
        raise ArtistProfileNotFound("You have no artist profile yet; create one with PUT /v1/artists/me.")
    return _response(artist)
