using HubertEcg.Client.Commands;

return await Cli.InvokeAsync(args);
