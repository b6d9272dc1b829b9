"""Campaign operations on both backends: audience filters, snapshot, schedule, state changes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from delivery_support import content_file, make_audience
from sqlalchemy import func, select

from mailer.campaigns import service as campaigns
from mailer.campaigns.models import Delivery
from mailer.database.connect import session_scope
from mailer.errors import CampaignError, TemplateError
from subscribers import service as subscribers
from subscribers.errors import ListNotFoundError


def _create(app, folder: Path, **audience) -> int:
    audience.setdefault("lists", ["nieuwsbrief"])
    with session_scope(app.sessions) as session:
        return campaigns.create_campaign(
            session, app.settings, app.signer, content_file=content_file(folder),
            audience=campaigns.AudienceSpec(**audience),
        ).id


def _recipients(app, campaign_id: int) -> set[str]:
    with session_scope(app.sessions) as session:
        campaigns.start(session, campaign_id)
        return set(session.scalars(select(Delivery.email).where(
            Delivery.campaign_id == campaign_id)))


def test_audience_filters(app, tmp_path: Path):
    make_audience(app.sessions, 20)  # regions round-robin Noord, Oost, Zuid, West, Midden
    make_audience(app.sessions, 4, lists=("regio-noord",), start=100, language="en")
    with session_scope(app.sessions) as session:
        subscribers.suppress(session, "p00000@gemeente0.example.nl", "manual")
        subscribers.set_status(session, "p00005@gemeente5.example.nl", "bounced")
        subscribers.unsubscribe(session, "p00010@gemeente3.example.nl", "nieuwsbrief")

    everyone = _recipients(app, _create(app, tmp_path))
    assert len(everyone) == 17  # 20 minus suppressed, bounced, unsubscribed
    assert "p00000@gemeente0.example.nl" not in everyone

    noord = _recipients(app, _create(app, tmp_path, regions=["noord"]))
    assert noord == {f"p{n:05d}@gemeente{n % 7}.example.nl" for n in (15,)}

    two_regions = _recipients(app, _create(app, tmp_path, regions=["Oost", "Zuid"]))
    assert len(two_regions) == 8

    org = _recipients(app, _create(app, tmp_path, organisations=["gemeente 1"]))
    assert org == {"p00001@gemeente1.example.nl", "p00008@gemeente1.example.nl",
                   "p00015@gemeente1.example.nl"}

    english = _recipients(app, _create(app, tmp_path, lists=["nieuwsbrief", "regio-noord"],
                                       languages=["en"]))
    assert len(english) == 4


def test_snapshot_is_idempotent(app, tmp_path: Path):
    make_audience(app.sessions, 5)
    campaign_id = _create(app, tmp_path)
    with session_scope(app.sessions) as session:
        assert campaigns.start(session, campaign_id) == 5
        from mailer.campaigns import queries

        campaign = campaigns.get_campaign(session, campaign_id)
        assert queries.snapshot_audience(session, campaign_id, campaign.audience) == 5
        count = session.scalar(select(func.count()).select_from(Delivery))
    assert count == 5


def test_create_validates_lists_regions_and_template(app, tmp_path: Path):
    make_audience(app.sessions, 1)
    with pytest.raises(ListNotFoundError, match="nergens"):
        _create(app, tmp_path, lists=["nergens"])
    with pytest.raises(CampaignError, match="unknown region 'Atlantis'"):
        _create(app, tmp_path, regions=["Atlantis"])
    with pytest.raises(CampaignError, match="language"):
        _create(app, tmp_path, languages=["de"])
    broken = tmp_path / "broken.md"
    broken.write_text("---\nsubject: Hoi\n---\nBeste {{ subscriber.naam }\n", encoding="utf-8")
    with pytest.raises(TemplateError), session_scope(app.sessions) as session:
        campaigns.create_campaign(
            session, app.settings, app.signer, content_file=broken,
            audience=campaigns.AudienceSpec(lists=["nieuwsbrief"]),
        )
    with session_scope(app.sessions) as session:
        assert campaigns.queries.campaigns_list(session) == []  # nothing half-made


def test_parse_when_uses_the_configured_zone(settings):
    winter = campaigns.parse_when("2027-01-10 09:00", settings)
    assert winter == dt.datetime(2027, 1, 10, 8, 0, tzinfo=dt.UTC)
    summer = campaigns.parse_when("2027-07-10 09:00", settings)
    assert summer == dt.datetime(2027, 7, 10, 7, 0, tzinfo=dt.UTC)
    explicit = campaigns.parse_when("2027-07-10 09:00+00:00", settings)
    assert explicit == dt.datetime(2027, 7, 10, 9, 0, tzinfo=dt.UTC)
    with pytest.raises(CampaignError, match="YYYY-MM-DD HH:MM"):
        campaigns.parse_when("morgen om negen", settings)
    with pytest.raises(CampaignError, match="not a real date"):
        campaigns.parse_when("2027-02-30 09:00", settings)


def test_schedule_pause_resume_cancel(app, tmp_path: Path):
    make_audience(app.sessions, 3)
    campaign_id = _create(app, tmp_path)
    now = dt.datetime.now(dt.UTC)
    with session_scope(app.sessions) as session:
        with pytest.raises(CampaignError, match="in the past"):
            campaigns.schedule(session, campaign_id, now - dt.timedelta(minutes=1))
        campaigns.schedule(session, campaign_id, now + dt.timedelta(hours=1))
        campaigns.pause(session, campaign_id)
        assert campaigns.resume(session, campaign_id) == "scheduled"
        campaigns.start(session, campaign_id)
        campaigns.pause(session, campaign_id)
        info = campaigns.campaign_status(session, campaign_id)
        assert info["status"] == "paused" and "administrator" in info["pause_reason"]
        assert campaigns.resume(session, campaign_id) == "running"
        assert campaigns.cancel(session, campaign_id) == 3
        info = campaigns.campaign_status(session, campaign_id)
        assert info["status"] == "cancelled" and info["skipped"] == 3
        with pytest.raises(CampaignError, match="cancelled"):
            campaigns.start(session, campaign_id)


def test_start_due_and_missed(app, tmp_path: Path):
    make_audience(app.sessions, 2)
    on_time = _create(app, tmp_path)
    too_late = _create(app, tmp_path)
    future = _create(app, tmp_path)
    now = dt.datetime.now(dt.UTC)
    with session_scope(app.sessions) as session:
        for cid in (on_time, too_late, future):
            campaigns.schedule(session, cid, now + dt.timedelta(minutes=1))
        later = now + dt.timedelta(hours=3)
        campaigns.schedule(session, future, later + dt.timedelta(hours=1), now=now)
        campaigns.schedule(session, too_late, now + dt.timedelta(minutes=1), now=now)
        session.flush()
        # too_late was due 2 hours before `later`; on_time 1 minute before a later check
        session.get(type(campaigns.get_campaign(session, too_late)), too_late).scheduled_at = (
            later - dt.timedelta(hours=2))
        session.get(type(campaigns.get_campaign(session, on_time)), on_time).scheduled_at = (
            later - dt.timedelta(minutes=5))
        session.flush()
        result = campaigns.start_due(session, later, dt.timedelta(minutes=60))
        assert result.started == [(on_time, 2)]
        assert [cid for cid, _at in result.missed] == [too_late]
        assert campaigns.get_campaign(session, too_late).status == "missed"
        assert campaigns.get_campaign(session, future).status == "scheduled"
        # Never twice: a second look finds nothing to start.
        again = campaigns.start_due(session, later, dt.timedelta(minutes=60))
        assert again.started == [] and again.missed == []
