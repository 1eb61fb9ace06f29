"""Paging of list queries: the caller's page and page size, checked against the settings,
and the one page value object every list operation returns."""

from dataclasses import dataclass
from typing import Generic, TypeVar

from service.errors import invalid

T = TypeVar("T")


@dataclass(frozen=True)
class PageVo(Generic[T]):
    """One page of a list: its items, the total over all pages, the page and its size."""

    items: tuple[T, ...]
    total: int
    page: int
    page_size: int


def page_window(page: int | None, page_size: int | None, api) -> tuple[int, int]:
    """``(page, page_size)`` with the defaults filled in from ``api`` (settings.api);
    VALIDATION_FAILED for a page below 1 or a size outside 1..api.max_page_size."""
    page = 1 if page is None else page
    page_size = api.default_page_size if page_size is None else page_size
    if page < 1:
        raise invalid("page", "must be at least 1")
    if not 1 <= page_size <= api.max_page_size:
        raise invalid("pageSize", f"must be between 1 and {api.max_page_size}")
    return page, page_size
