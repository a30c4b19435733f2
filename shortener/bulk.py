"""Many links or touchpoints at once: every row checked by the rules of the single create, the
good ones written set-at-a-time, and a result for each row by its number.

Rows are numbered from 1 (the first data row of a CSV file, the first item of a JSON list).
Nothing here commits: an all-or-nothing (atomic) import that finds a bad row raises
`RowsInvalidError`, and the edge's unit of work rolls back whatever the import had written.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Generic, Literal, NotRequired, TypeVar

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload
from typing_extensions import TypedDict

from shortener import slug_history
from shortener.db import unique_or
from shortener.domains import link_domain
from shortener.errors import (
    ConflictError,
    DomainError,
    InvalidFieldError,
    SlugRetiredError,
    SlugTakenError,
)
from shortener.links import RANDOM_SLUG_ATTEMPTS, CheckedLink, LinkInput, LinkOut, check_link
from shortener.models import Coupon, Link, Placement, Touchpoint
from shortener.schemas import ErrorDetail
from shortener.slugs import random_slug, slug_key
from shortener.stages import find_stage, list_stages
from shortener.touchpoints import (
    TouchpointInput,
    TouchpointOut,
    coupon_taken,
    find_touchpoint,
    key_taken,
)
from shortener.unit_of_work import link_changed

MAX_ROWS = 10_000
# Keys and slugs are looked up this many at a time (SQLite takes at most 32,766 parameters).
CHUNK = 1000

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Row:
    """One row to import: its number and its fields, as the single create endpoint takes them;
    or the error that refused it before its fields could be read (a CSV cell)."""

    number: int
    fields: Any
    error: DomainError | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    row: int
    created: Any = None  # the Link or Touchpoint written
    error: DomainError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class Report:
    outcomes: list[Outcome]
    atomic: bool
    dry_run: bool

    @property
    def failed(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if not outcome.ok]

    @property
    def created(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.created is not None)

    def totals(self) -> dict[str, int]:
        failed = len(self.failed)
        return {
            "rows": len(self.outcomes),
            "valid": len(self.outcomes) - failed,
            "created": self.created,
            "failed": failed,
        }


class InvalidRowError(DomainError):
    """A row of a JSON import that is not an object of fields."""

    code = "invalid_row"
    status = 422


class RowsInvalidError(DomainError):
    """An all-or-nothing import with bad rows: nothing was written; every bad row is listed."""

    code = "rows_invalid"
    status = 422

    def __init__(self, report: Report) -> None:
        failed = report.failed
        super().__init__(
            f"{len(failed):,} of {len(report.outcomes):,} rows are invalid; nothing was written.",
            details={
                "rows": len(report.outcomes),
                "failed": len(failed),
                "errors": [{"row": o.row, "error": error_json(o.error)} for o in failed],
            },
        )
        self.report = report


def error_json(error: DomainError | None) -> dict[str, Any]:
    """A row's error as the single endpoint would answer it: `{"code", "message", "details"}`."""
    assert error is not None
    body: dict[str, Any] = error.to_json()["error"]
    return body


class BulkTotals(TypedDict):
    rows: int
    valid: int
    created: int
    failed: int


class BulkResult(TypedDict):
    row: int
    status: Literal["created", "valid", "error"]
    error: NotRequired[ErrorDetail]


class LinkBulkResult(BulkResult):
    link: NotRequired[LinkOut]


class TouchpointBulkResult(BulkResult):
    touchpoint: NotRequired[TouchpointOut]


class LinkBulkReport(TypedDict):
    atomic: bool
    dry_run: bool
    totals: BulkTotals
    results: list[LinkBulkResult]


class TouchpointBulkReport(TypedDict):
    atomic: bool
    dry_run: bool
    totals: BulkTotals
    results: list[TouchpointBulkResult]


def report_json(
    report: Report, name: str, present: Callable[[Any], Mapping[str, Any]]
) -> dict[str, Any]:
    """The answer to a bulk request: totals, and per row what it created (under `name`, as the
    single create endpoint presents it) or its error."""
    results: list[dict[str, Any]] = []
    for outcome in report.outcomes:
        if outcome.error is not None:
            results.append({"row": outcome.row, "status": "error",
                            "error": error_json(outcome.error)})
        elif outcome.created is None:
            results.append({"row": outcome.row, "status": "valid"})
        else:
            results.append({"row": outcome.row, "status": "created",
                            name: present(outcome.created)})
    return {
        "atomic": report.atomic,
        "dry_run": report.dry_run,
        "totals": report.totals(),
        "results": results,
    }


@dataclass
class _Batch(Generic[T]):
    """The rows of one import on their way through the checks: the good ones and the refusals."""

    good: dict[int, T] = field(default_factory=dict)
    errors: dict[int, DomainError] = field(default_factory=dict)
    numbers: list[int] = field(default_factory=list)

    def refuse(self, number: int, error: DomainError) -> None:
        self.good.pop(number, None)
        self.errors[number] = error

    def report(self, created: dict[int, Any], *, atomic: bool, dry_run: bool) -> Report:
        outcomes = [
            Outcome(number, created=created.get(number), error=self.errors.get(number))
            for number in self.numbers
        ]
        return Report(outcomes, atomic=atomic, dry_run=dry_run)


def _read(rows: Sequence[Row], parse: Callable[[Any], T]) -> _Batch[T]:
    batch: _Batch[T] = _Batch()
    for row in sorted(rows, key=lambda r: r.number):
        batch.numbers.append(row.number)
        if row.error is not None:
            batch.errors[row.number] = row.error
            continue
        if not isinstance(row.fields, dict):
            batch.errors[row.number] = InvalidRowError(
                f"Row {row.number} is not an object of fields."
            )
            continue
        try:
            batch.good[row.number] = parse(row.fields)
        except DomainError as exc:
            batch.errors[row.number] = exc
    return batch


class _References(Generic[T]):
    """What keys name, found set-at-a-time beforehand; a key not found is asked of `find`, which
    raises the single create's own error (remembered, so that each key is asked about once)."""

    def __init__(self, found: dict[str, T], find: Callable[[str], T]) -> None:
        self._found = found
        self._find = find
        self._refused: dict[str, DomainError] = {}

    def __call__(self, key: str) -> T:
        if key in self._found:
            return self._found[key]
        if key in self._refused:
            raise self._refused[key]
        try:
            found = self._find(key)
        except DomainError as exc:
            self._refused[key] = exc
            raise
        self._found[key] = found
        return found


def _chunks(items: Iterable[str]) -> Iterator[list[str]]:
    ordered = sorted(set(items))
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


def _insert(session: Session, model: type[T], values: list[dict[str, Any]], *,
            unique: list[str]) -> list[T]:
    """INSERT the rows at once; a row whose `unique` columns are taken is skipped (not returned),
    so that a row taken by a concurrent writer is reported rather than failing the rest."""
    if not values:
        return []
    dialect = session.get_bind().dialect.name
    make = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = make(model).on_conflict_do_nothing(index_elements=unique).returning(model)
    return list(session.scalars(statement, values).all())


# --- links --------------------------------------------------------------------------------------


def import_links(
    session: Session,
    rows: Sequence[Row],
    *,
    domain: str | None,
    own_hosts: Collection[str],
    default_status: int = 302,
    atomic: bool = False,
    dry_run: bool = False,
    progress: Callable[[int], None] = lambda done: None,
) -> Report:
    """Check every row as `create_link` would, then (unless `dry_run`) write the good ones; with
    `atomic`, any bad row raises RowsInvalidError instead. Two rows with one slug: the later is
    refused. The links go on `domain`, or the default one. `progress` hears of rows checked,
    then of rows written: twice the rows in all."""
    domain = link_domain(session, domain)
    batch = _read(rows, LinkInput.from_json)
    named = {data.values["touchpoint"] for data in batch.good.values()}
    touchpoint = _References(_live_touchpoints(session, named),
                             lambda key: find_touchpoint(session, key))
    stage = _References({s.key: s for s in list_stages(session)},
                        lambda key: find_stage(session, key))
    checked: _Batch[CheckedLink] = _Batch(numbers=batch.numbers, errors=batch.errors)
    for done, (number, data) in enumerate(batch.good.items(), start=1):
        try:
            host = data.values.get("domain")
            if host is not None and link_domain(session, host) != domain:
                raise InvalidFieldError(
                    "domain", f"must be the import's own, {domain} (choose it with ?domain=)."
                )
            checked.good[number] = check_link(
                data, domain=domain, own_hosts=own_hosts, default_status=default_status,
                touchpoint=touchpoint, stage=stage,
            )
        except DomainError as exc:
            checked.errors[number] = exc
        if done % CHUNK == 0:
            progress(CHUNK)
    progress(len(batch.numbers) - len(batch.good) // CHUNK * CHUNK)
    _claim_slugs(session, checked, domain)
    if checked.errors and atomic:
        raise RowsInvalidError(checked.report({}, atomic=atomic, dry_run=dry_run))
    if dry_run:
        return checked.report({}, atomic=atomic, dry_run=dry_run)
    created = _write_links(session, checked, domain, progress)
    report = checked.report(created, atomic=atomic, dry_run=dry_run)
    if atomic and report.failed:  # a slug taken meanwhile by another writer
        raise RowsInvalidError(report)
    return report


def _live_touchpoints(session: Session, keys: Collection[str]) -> dict[str, Touchpoint]:
    found: dict[str, Touchpoint] = {}
    for chunk in _chunks(keys):
        query = select(Touchpoint).where(Touchpoint.key.in_(chunk), Touchpoint.archived.is_(False))
        found.update((tp.key, tp) for tp in session.scalars(query))
    return found


def _taken_slugs(session: Session, domain: str, slugs: Iterable[str]) -> set[str]:
    """The slug keys (`slug_key`) of `slugs` that links of `domain` hold or gave up."""
    taken: set[str] = set()
    for chunk in _chunks(slug_key(slug) for slug in slugs):
        query = select(Link.slug_key).where(Link.domain == domain, Link.slug_key.in_(chunk))
        taken.update(session.scalars(query))
        taken.update(slug_history.taken(session, domain, chunk))
    return taken


def _claim_slugs(session: Session, checked: _Batch[CheckedLink], domain: str) -> None:
    """Refuse custom slugs in use, and those an earlier good row of the same file claims."""
    custom = {number: link.slug for number, link in checked.good.items() if link.slug}
    taken = _taken_slugs(session, domain, (slug for slug in custom.values() if slug))
    given_up = slug_history.taken(session, domain, sorted(taken))
    claimed: dict[str, int] = {}
    for number, slug in sorted(custom.items()):
        assert slug is not None
        if slug_key(slug) in given_up:
            checked.refuse(number, SlugRetiredError(slug, domain, given_up[slug_key(slug)]))
        elif slug_key(slug) in taken:
            checked.refuse(number, SlugTakenError(slug, domain))
        elif slug_key(slug) in claimed:
            checked.refuse(number, _slug_in_file(slug, domain, claimed[slug_key(slug)]))
        else:
            claimed[slug_key(slug)] = number


def _slug_in_file(slug: str, domain: str, row: int) -> SlugTakenError:
    error = SlugTakenError(slug, domain)
    error.message = f"The slug '{slug}' is also in row {row} of this import."
    error.details["row"] = row
    return error


def _write_links(
    session: Session, checked: _Batch[CheckedLink], domain: str, progress: Callable[[int], None]
) -> dict[int, Any]:
    """Insert the good rows; random slugs are drawn clear of every slug in the import and in use,
    and drawn again in the unlikely case that a concurrent writer took one meanwhile."""
    slugs = {number: link.slug for number, link in checked.good.items() if link.slug}
    in_use = {slug_key(slug) for slug in slugs.values()}
    pending = dict(checked.good)
    created: dict[int, Any] = {}
    for _ in range(RANDOM_SLUG_ATTEMPTS):
        drawn = {n: random_slug() for n in pending if pending[n].slug is None}
        in_use.update(_taken_slugs(session, domain, drawn.values()))
        for number, slug in drawn.items():
            while slug_key(slug) in in_use:
                slug = random_slug()
            in_use.add(slug_key(slug))
            slugs[number] = slug
        values = [_link_columns(pending[n], slugs[n]) for n in sorted(pending)]
        by_slug: dict[str, Link] = {}
        for start in range(0, len(values), CHUNK):
            chunk = values[start : start + CHUNK]
            inserted = _insert(session, Link, chunk, unique=["domain", "slug_key"])
            by_slug.update((link.slug_key, link) for link in inserted)
            progress(len(inserted))
        for number in sorted(pending):
            slug = slugs[number]
            link = by_slug.get(slug_key(slug))
            if link is not None:
                created[number] = link
                link_changed(session, domain, slug)  # a cached "not found" may linger
                del pending[number]
            elif pending[number].slug is not None:
                checked.refuse(number, SlugTakenError(slug, domain))
                del pending[number]
        if not pending:
            break
    for number in pending:  # random slugs that kept colliding (not seen in practice)
        checked.refuse(number, SlugTakenError(slugs[number], domain))
    return created


def _link_columns(checked: CheckedLink, slug: str | None) -> dict[str, Any]:
    link = checked.link
    return {
        "domain": link.domain,
        "slug": slug,
        "slug_key": slug_key(slug) if slug else None,
        "destination": link.destination,
        "touchpoint_id": link.touchpoint.id,
        "stage_id": link.stage.id,
        "campaign": link.campaign,
        "title": link.title,
        "redirect_status": link.redirect_status,
        "utm": link.utm,
        "expires_at": link.expires_at,
        "starts_at": link.starts_at,
        "fallback_url": link.fallback_url,
        "track_conversions": link.track_conversions,
        "survey_kind": link.survey_kind,
        "survey_question": link.survey_question,
        "survey_then": link.survey_then,
    }


# --- touchpoints ----------------------------------------------------------------------------------


def import_touchpoints(
    session: Session,
    rows: Sequence[Row],
    *,
    today: date,
    atomic: bool = False,
    dry_run: bool = False,
    progress: Callable[[int], None] = lambda done: None,
) -> Report:
    """Check every row as `create_touchpoint` would, then (unless `dry_run`) write the good ones
    with their first placement (`exposure`, dated `today`) and coupons; with `atomic`, any bad row
    raises RowsInvalidError instead. A key or coupon two rows share is refused in the later.
    `progress` hears of rows checked, then of rows written."""
    batch = _read(rows, TouchpointInput.from_json)
    _claim_keys(session, batch)
    _claim_coupons(session, batch)
    progress(len(batch.numbers))
    if batch.errors and atomic:
        raise RowsInvalidError(batch.report({}, atomic=atomic, dry_run=dry_run))
    if dry_run:
        return batch.report({}, atomic=atomic, dry_run=dry_run)
    created = _write_touchpoints(session, batch, today)
    progress(len(created))
    report = batch.report(created, atomic=atomic, dry_run=dry_run)
    if atomic and report.failed:  # a key taken meanwhile by another writer
        raise RowsInvalidError(report)
    return report


def _claim_keys(session: Session, batch: _Batch[TouchpointInput]) -> None:
    keys = {number: data.values["key"] for number, data in batch.good.items()}
    taken: set[str] = set()
    for chunk in _chunks(keys.values()):
        taken.update(session.scalars(select(Touchpoint.key).where(Touchpoint.key.in_(chunk))))
    claimed: dict[str, int] = {}
    for number, key in sorted(keys.items()):
        if key in taken:
            batch.refuse(number, key_taken(key))
        elif key in claimed:
            batch.refuse(number, ConflictError(
                f"The key '{key}' is also in row {claimed[key]} of this import.",
                details={"field": "key", "row": claimed[key]},
            ))
        else:
            claimed[key] = number


def _claim_coupons(session: Session, batch: _Batch[TouchpointInput]) -> None:
    codes = {number: data.values.get("coupons") or [] for number, data in batch.good.items()}
    owners: dict[str, str] = {}
    for chunk in _chunks(code for row in codes.values() for code in row):
        found = session.execute(
            select(Coupon.code, Touchpoint.key)
            .join(Touchpoint, Touchpoint.id == Coupon.touchpoint_id)
            .where(Coupon.code.in_(chunk))
        )
        owners.update((code, key) for code, key in found)
    claimed: dict[str, int] = {}
    for number, row_codes in sorted(codes.items()):
        owned = [code for code in row_codes if code in owners]
        twice = [code for code in row_codes if code in claimed]
        if owned:
            batch.refuse(number, coupon_taken(owned[0], owners[owned[0]]))
        elif twice:
            batch.refuse(number, ConflictError(
                f"The coupon {twice[0]} is also in row {claimed[twice[0]]} of this import.",
                details={"field": "coupons", "coupon": twice[0], "row": claimed[twice[0]]},
            ))
        else:
            claimed.update((code, number) for code in row_codes)


def _write_touchpoints(
    session: Session, batch: _Batch[TouchpointInput], today: date
) -> dict[int, Any]:
    good = dict(sorted(batch.good.items()))
    columns = ("key", "name", "channel", "kind")
    values = [{name: data.values.get(name) for name in columns} for data in good.values()]
    with unique_or(session, lambda: ConflictError(
        "A coupon of this import was given to another touchpoint meanwhile; import again."
    )):
        inserted = {tp.key: tp for tp in _insert(session, Touchpoint, values, unique=["key"])}
        created: dict[int, Any] = {}
        placements: list[dict[str, Any]] = []
        coupons: list[dict[str, Any]] = []
        for number, data in good.items():
            touchpoint = inserted.get(data.values["key"])
            if touchpoint is None:
                batch.refuse(number, key_taken(data.values["key"]))
                continue
            created[number] = touchpoint
            if data.values.get("exposure") is not None:
                placements.append({"touchpoint_id": touchpoint.id,
                                   "count": data.values["exposure"], "starts_on": today})
            coupons.extend({"touchpoint_id": touchpoint.id, "code": code}
                           for code in data.values.get("coupons") or [])
        for model, rows in ((Placement, placements), (Coupon, coupons)):
            if rows:
                session.execute(insert(model), rows)
    _load_collections(session, [tp.id for tp in created.values()])
    return created


def _load_collections(session: Session, ids: list[int]) -> None:
    """Placements and coupons of the new touchpoints, loaded together rather than one by one."""
    for start in range(0, len(ids), CHUNK):
        query = (
            select(Touchpoint)
            .where(Touchpoint.id.in_(ids[start : start + CHUNK]))
            .options(selectinload(Touchpoint.placements), selectinload(Touchpoint.coupons))
            .execution_options(populate_existing=True)
        )
        session.scalars(query).all()

