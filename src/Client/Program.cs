using HubertEcg.Client.Commands;

return await Cli.BuildRoot().Parse(args).InvokeAsync();
