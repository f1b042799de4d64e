from tests.sync.world import slot, weekly


def test_first_sync_matches_ground_truth(world, no_subscribe):
    sim = world.sim
    alice = world.user("Alice")
    team = sim.create_calendar(alice, "Team")
    sim.create_event(alice, subject="one", **slot(1))
    sim.create_event(alice, subject="series", **weekly(-3))
    sim.create_event(alice, calendar_id=team["id"], subject="team series", **weekly(2, 10))
    world.link(alice)
    outcomes = world.drain()
    assert [o.status for o in outcomes] == ["synced"], outcomes
    world.assert_converged(alice)
