using Cronos;

namespace HubertEcg.Storage;

/// <summary>
/// A cron expression read in an IANA time zone (Cronos: daylight-saving correct). Five fields (minute, hour,
/// day of month, month, day of week) or six with a leading seconds field; Cronos' macros (<c>@daily</c>, ...) too.
/// At a spring-forward gap an occurrence inside the missing hour happens at the end of the gap; at a fall-back
/// overlap a fixed time (<c>0 2 * * *</c>) happens once, at its first instance, while interval fields
/// (<c>*/30 * * * *</c>) fire in both instances.
/// </summary>
public sealed class CronSchedule
{
    private readonly CronExpression _cron;

    private CronSchedule(string expression, CronExpression cron, TimeZoneInfo zone)
    {
        Expression = expression;
        _cron = cron;
        Zone = zone;
    }

    public string Expression { get; }

    public TimeZoneInfo Zone { get; }

    /// <summary>
    /// Parses <paramref name="expression"/> in time zone <paramref name="timeZone"/> (an IANA id such as
    /// <c>Europe/Amsterdam</c>, or <c>UTC</c>); throws <see cref="ArgumentException"/> naming what is wrong.
    /// </summary>
    public static CronSchedule Parse(string expression, string timeZone)
    {
        var text = (expression ?? "").Trim();
        if (text.Length == 0)
        {
            throw new ArgumentException("the cron expression is empty; expected five fields such as \"0 2 * * *\" (02:00 every day)");
        }

        var fields = text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
        if (fields is not (1 or 5 or 6))
        {
            throw new ArgumentException(
                $"cron expression \"{text}\" has {fields} fields; expected 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)");
        }

        CronExpression cron;
        try
        {
            cron = CronExpression.Parse(text, fields == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard);
        }
        catch (CronFormatException e)
        {
            throw new ArgumentException($"cron expression \"{text}\" is not valid: {e.Message}", e);
        }
        catch (MissingSeedException e)
        {
            throw new ArgumentException($"cron expression \"{text}\" uses H (hashed) fields, which schedules do not support", e);
        }

        return new CronSchedule(text, cron, FindZone(timeZone));
    }

    /// <summary>The time zone with IANA id <paramref name="timeZone"/>; throws <see cref="ArgumentException"/> when there is none.</summary>
    public static TimeZoneInfo FindZone(string timeZone)
    {
        var id = (timeZone ?? "").Trim();
        if (id.Length == 0)
        {
            throw new ArgumentException("the time zone is empty; expected an IANA time zone id such as Europe/Amsterdam or UTC");
        }

        try
        {
            return TimeZoneInfo.FindSystemTimeZoneById(id);
        }
        catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            throw new ArgumentException($"time zone \"{id}\" is not an IANA time zone id known to this machine (for example Europe/Amsterdam or UTC)", e);
        }
    }

    /// <summary>The first occurrence strictly after <paramref name="afterUtc"/>, in UTC; null when there is none.</summary>
    public DateTime? NextAfter(DateTime afterUtc) => _cron.GetNextOccurrence(AsUtc(afterUtc), Zone, inclusive: false);

    /// <summary>
    /// The due time to fire at <paramref name="nowUtc"/> when due times up to <paramref name="firedUpToUtc"/> are
    /// handled: the latest occurrence in (<paramref name="firedUpToUtc"/>, <paramref name="nowUtc"/>], or null when
    /// none fell in it. Catch-up policy: however many occurrences were missed (silos down, a run still busy), only
    /// the latest is run, once; the earlier ones are not.
    /// </summary>
    public DateTime? DueAt(DateTime firedUpToUtc, DateTime nowUtc)
    {
        if (AsUtc(nowUtc) <= AsUtc(firedUpToUtc))
        {
            return null;
        }

        var latest = _cron.GetPreviousOccurrence(AsUtc(nowUtc), Zone, inclusive: true);
        return latest is { } due && due > AsUtc(firedUpToUtc) ? due : null;
    }

    /// <summary>How many occurrences fell in (<paramref name="firedUpToUtc"/>, <paramref name="nowUtc"/>], counting up to <paramref name="limit"/>.</summary>
    public int CountDue(DateTime firedUpToUtc, DateTime nowUtc, int limit = 1000)
    {
        var count = 0;
        var at = AsUtc(firedUpToUtc);
        while (count < limit && _cron.GetNextOccurrence(at, Zone, inclusive: false) is { } next && next <= AsUtc(nowUtc))
        {
            count++;
            at = next;
        }

        return count;
    }

    /// <summary><paramref name="utc"/> as wall-clock time in the schedule's zone.</summary>
    public DateTimeOffset ToZone(DateTime utc)
    {
        var u = AsUtc(utc);
        return new DateTimeOffset(TimeZoneInfo.ConvertTimeFromUtc(u, Zone), Zone.GetUtcOffset(u));
    }

    private static DateTime AsUtc(DateTime value) => value.Kind switch
    {
        DateTimeKind.Utc => value,
        DateTimeKind.Unspecified => DateTime.SpecifyKind(value, DateTimeKind.Utc),
        _ => value.ToUniversalTime(),
    };
}
