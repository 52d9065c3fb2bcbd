"""Pages of ``find`` results.

A page is a list of documents (``for doc in page``, ``len(page)``, ``page[0]``) that also
answers to the gateway's answer keys, ``page["data"]`` and ``page["pagination"]["cursor"]``,
so code written against the raw JSON keeps working. It remembers the query and the client that
made it, so it can fetch the pages after it: ``next_page()``, ``iter_pages()`` and
``iter_documents()`` (every document from this page on).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, overload

from ._operations import Operation, find_from_cursor
from ._types import Document, FindResult

if TYPE_CHECKING:
    from ._base_client import AsyncAPIClient, SyncAPIClient

__all__ = ["AsyncPage", "Page"]


class _BasePage:
    def __init__(
        self,
        result: FindResult,
        operation: Operation[FindResult],
        headers: Mapping[str, str] | None,
    ) -> None:
        self._result = result
        self._operation = operation
        self._headers = headers

    @property
    def data(self) -> list[Document]:
        """The documents of this page."""
        return self._result["data"]

    @property
    def has_more(self) -> bool:
        """Whether pages follow this one."""
        return self._result["pagination"]["has_more"]

    @property
    def cursor(self) -> str | None:
        """The cursor that fetches the next page (pass it as ``find(..., cursor=)``)."""
        return self._result["pagination"]["cursor"]

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator[Document]:
        return iter(self.data)

    @overload
    def __getitem__(self, key: int) -> Document: ...
    @overload
    def __getitem__(self, key: slice) -> list[Document]: ...
    @overload
    def __getitem__(self, key: str) -> Any: ...
    def __getitem__(self, key: int | slice | str) -> Any:
        if isinstance(key, str):
            return self._result[key]  # type: ignore[literal-required]
        return self.data[key]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {len(self)} documents, has_more={self.has_more}>"

    def _next_operation(self) -> Operation[FindResult] | None:
        if not self.has_more or self.cursor is None:
            return None
        return find_from_cursor(self._operation, self.cursor)


class Page(_BasePage):
    """One page of :meth:`PermissionMongo.find` results."""

    def __init__(
        self,
        result: FindResult,
        *,
        client: SyncAPIClient,
        operation: Operation[FindResult],
        headers: Mapping[str, str] | None,
    ) -> None:
        super().__init__(result, operation, headers)
        self._client = client

    def next_page(self) -> Page | None:
        """Fetch the page after this one, or None when this is the last."""
        operation = self._next_operation()
        if operation is None:
            return None
        result = self._client._send(operation, self._headers)
        return Page(result, client=self._client, operation=operation, headers=self._headers)

    def iter_pages(self) -> Iterator[Page]:
        """This page and every page after it, fetched as the iteration reaches them."""
        page: Page | None = self
        while page is not None:
            yield page
            page = page.next_page()

    def iter_documents(self) -> Iterator[Document]:
        """Every document from this page on, across pages."""
        for page in self.iter_pages():
            yield from page


class AsyncPage(_BasePage):
    """One page of :meth:`AsyncPermissionMongo.find` results; ``async for`` (or ``for``)
    goes over its documents."""

    def __init__(
        self,
        result: FindResult,
        *,
        client: AsyncAPIClient,
        operation: Operation[FindResult],
        headers: Mapping[str, str] | None,
    ) -> None:
        super().__init__(result, operation, headers)
        self._client = client

    async def __aiter__(self) -> AsyncIterator[Document]:
        for document in self.data:
            yield document

    async def next_page(self) -> AsyncPage | None:
        """Fetch the page after this one, or None when this is the last."""
        operation = self._next_operation()
        if operation is None:
            return None
        result = await self._client._send(operation, self._headers)
        return AsyncPage(result, client=self._client, operation=operation, headers=self._headers)

    async def iter_pages(self) -> AsyncIterator[AsyncPage]:
        """This page and every page after it, fetched as the iteration reaches them."""
        page: AsyncPage | None = self
        while page is not None:
            yield page
            page = await page.next_page()

    async def iter_documents(self) -> AsyncIterator[Document]:
        """Every document from this page on, across pages."""
        async for page in self.iter_pages():
            for document in page:
                yield document
