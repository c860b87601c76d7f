namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>A grain that registers, reads and removes one reminder: exercises the reminder SQL through the Orleans provider.</summary>
[Alias("HubertEcg.Tests.IReminderProbeGrain")]
public interface IReminderProbeGrain : IGrainWithStringKey
{
    [Alias("Register")]
    Task<string> Register(TimeSpan period);

    [Alias("Count")]
    Task<int> Count();

    [Alias("Remove")]
    Task Remove();
}

public sealed class ReminderProbeGrain : Grain, IReminderProbeGrain, IRemindable
{
    private const string Name = "probe";

    public async Task<string> Register(TimeSpan period)
    {
        var reminder = await this.RegisterOrUpdateReminder(Name, TimeSpan.FromMinutes(10), period);
        return reminder.ReminderName;
    }

    public async Task<int> Count() => (await this.GetReminders()).Count;

    public async Task Remove()
    {
        var reminder = await this.GetReminder(Name);
        if (reminder is not null)
        {
            await this.UnregisterReminder(reminder);
        }
    }

    public Task ReceiveReminder(string reminderName, Orleans.Runtime.TickStatus status) => Task.CompletedTask;
}
