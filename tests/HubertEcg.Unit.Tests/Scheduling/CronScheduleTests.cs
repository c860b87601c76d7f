using HubertEcg.Storage;

namespace HubertEcg.Unit.Tests.Scheduling;

/// <summary>Cron expressions read in a time zone: next occurrences across daylight saving, catch-up, and bad input.</summary>
public sealed class CronScheduleTests
{
    private static DateTime Utc(int year, int month, int day, int hour, int minute = 0, int second = 0) =>
        new(year, month, day, hour, minute, second, DateTimeKind.Utc);

    [Fact]
    public void NightlyInAmsterdamFollowsTheLocalClockInWinterAndSummer()
    {
        var nightly = CronSchedule.Parse("0 2 * * *", "Europe/Amsterdam");

        // CET is UTC+1, CEST UTC+2: 02:00 local is 01:00 UTC in January and 00:00 UTC in July.
        Assert.Equal(Utc(2026, 1, 15, 1), nightly.NextAfter(Utc(2026, 1, 14, 12)));
        Assert.Equal(Utc(2026, 7, 15, 0), nightly.NextAfter(Utc(2026, 7, 14, 12)));
        Assert.Equal(new DateTimeOffset(2026, 7, 15, 2, 0, 0, TimeSpan.FromHours(2)), nightly.ToZone(Utc(2026, 7, 15, 0)));
    }

    [Fact]
    public void ATimeInTheSpringForwardGapRunsOnceAtTheEndOfTheGap()
    {
        // 2026-03-29: Amsterdam clocks jump from 02:00 CET to 03:00 CEST (01:00 UTC); 02:00 does not exist that night.
        var nightly = CronSchedule.Parse("0 2 * * *", "Europe/Amsterdam");
        var first = nightly.NextAfter(Utc(2026, 3, 28, 12));
        Assert.Equal(Utc(2026, 3, 29, 1), first);
        Assert.Equal(new DateTimeOffset(2026, 3, 29, 3, 0, 0, TimeSpan.FromHours(2)), nightly.ToZone(first!.Value));
        Assert.Equal(Utc(2026, 3, 30, 0), nightly.NextAfter(first.Value));
    }

    [Fact]
    public void AFixedTimeInTheFallBackOverlapRunsOnceAndIntervalsRunInBothHalves()
    {
        // 2026-10-25: Amsterdam clocks go back from 03:00 CEST to 02:00 CET (01:00 UTC); 02:00-03:00 happens twice.
        var nightly = CronSchedule.Parse("0 2 * * *", "Europe/Amsterdam");
        Assert.Equal(Utc(2026, 10, 25, 0), nightly.NextAfter(Utc(2026, 10, 24, 12)));
        Assert.Equal(Utc(2026, 10, 26, 1), nightly.NextAfter(Utc(2026, 10, 25, 0)));

        var halfHourly = CronSchedule.Parse("*/30 2 * * *", "Europe/Amsterdam");
        var occurrences = new List<DateTime>();
        var at = Utc(2026, 10, 24, 23);
        while (halfHourly.NextAfter(at) is { } next && next < Utc(2026, 10, 25, 3))
        {
            occurrences.Add(next);
            at = next;
        }

        Assert.Equal(
            [Utc(2026, 10, 25, 0), Utc(2026, 10, 25, 0, 30), Utc(2026, 10, 25, 1), Utc(2026, 10, 25, 1, 30)],
            occurrences);
    }

    [Fact]
    public void CatchUpRunsOnlyTheLatestMissedDueTime()
    {
        var hourly = CronSchedule.Parse("0 * * * *", "UTC");
        var handled = Utc(2026, 5, 1, 10);

        // Down from 10:00 to 15:20: five due times passed; only 15:00 is run, the four before it are passed over.
        Assert.Equal(Utc(2026, 5, 1, 15), hourly.DueAt(handled, Utc(2026, 5, 1, 15, 20)));
        Assert.Equal(5, hourly.CountDue(handled, Utc(2026, 5, 1, 15, 20)));

        // Nothing passed yet; the due time itself counts as passed; a clock behind the last due time finds nothing.
        Assert.Null(hourly.DueAt(handled, Utc(2026, 5, 1, 10, 59, 59)));
        Assert.Equal(Utc(2026, 5, 1, 11), hourly.DueAt(handled, Utc(2026, 5, 1, 11)));
        Assert.Null(hourly.DueAt(handled, handled));
        Assert.Null(hourly.DueAt(handled, Utc(2026, 5, 1, 9)));
    }

    [Fact]
    public void CatchUpAcrossDaylightSavingUsesTheLocalDueTimes()
    {
        // A nightly 02:00 Amsterdam schedule last run on 2026-03-27 and down until the evening of 03-30: the latest
        // missed due time is 03-30 02:00 CEST (00:00 UTC); 03-28 and 03-29 (the gap night, 03:00 CEST) are passed over.
        var nightly = CronSchedule.Parse("0 2 * * *", "Europe/Amsterdam");
        var handled = Utc(2026, 3, 27, 1);
        Assert.Equal(Utc(2026, 3, 30, 0), nightly.DueAt(handled, Utc(2026, 3, 30, 18)));
        Assert.Equal(3, nightly.CountDue(handled, Utc(2026, 3, 30, 18)));
    }

    [Fact]
    public void SixFieldsIncludeSeconds()
    {
        var everyTenSeconds = CronSchedule.Parse("*/10 * * * * *", "UTC");
        Assert.Equal(Utc(2026, 5, 1, 10, 0, 10), everyTenSeconds.NextAfter(Utc(2026, 5, 1, 10, 0, 3)));
    }

    [Fact]
    public void MacrosAreAccepted()
    {
        Assert.Equal(Utc(2026, 5, 2, 0), CronSchedule.Parse("@daily", "UTC").NextAfter(Utc(2026, 5, 1, 10)));
    }

    [Theory]
    [InlineData("0 2 * *", "UTC", "has 4 fields")]
    [InlineData("", "UTC", "is empty")]
    [InlineData("61 2 * * *", "UTC", "is not valid")]
    [InlineData("0 2 * * mon-xyz", "UTC", "is not valid")]
    [InlineData("H 2 * * *", "UTC", "H (hashed) fields")]
    [InlineData("0 2 * * *", "Mars/Olympus_Mons", "\"Mars/Olympus_Mons\" is not an IANA time zone id")]
    [InlineData("0 2 * * *", " ", "the time zone is empty")]
    public void BadExpressionsAndZonesAreRejectedWithTheReason(string cron, string zone, string expected)
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => CronSchedule.Parse(cron, zone));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }
}
