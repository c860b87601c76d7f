-- Orleans ADO.NET clustering and reminders on PostgreSQL, written for this project.
-- The Orleans providers (Microsoft.Orleans.Clustering.AdoNet / Reminders.AdoNet, invariant "Npgsql")
-- read every statement they run from orleansquery by key; they bind parameters by name (@DeploymentId, ...)
-- and read result columns by name, so those names are the contract. Version columns are optimistic
-- concurrency counters: a write that names a stale version changes nothing and reports 0.

create table orleansquery (
    querykey varchar(64) primary key,
    querytext varchar(8000) not null
);

-- Clustering: one version row per deployment, bumped by every membership change.
create table orleansmembershipversiontable (
    deploymentid varchar(150) primary key,
    timestamp timestamptz(3) not null default now(),
    version integer not null default 0
);

-- One row per silo incarnation (address, port, generation).
create table orleansmembershiptable (
    deploymentid varchar(150) not null references orleansmembershipversiontable (deploymentid),
    address varchar(45) not null,
    port integer not null,
    generation integer not null,
    siloname varchar(150) not null,
    hostname varchar(150) not null,
    status integer not null,
    proxyport integer,
    suspecttimes varchar(8000),
    starttime timestamptz(3) not null,
    iamalivetime timestamptz(3) not null,
    primary key (deploymentid, address, port, generation)
);

-- Adds a silo row and bumps the version, both or neither. Returns 1 on success, 0 when the version was stale
-- or the row already existed.
create function hubert_orleans_insert_member(
    p_deployment varchar, p_address varchar, p_port integer, p_generation integer, p_silo_name varchar,
    p_host_name varchar, p_status integer, p_proxy_port integer, p_start timestamptz, p_alive timestamptz,
    p_version integer)
returns table (row_count integer)
language plpgsql as $fn$
declare
    changed integer;
begin
    begin
        insert into orleansmembershiptable
            (deploymentid, address, port, generation, siloname, hostname, status, proxyport, starttime, iamalivetime)
        values
            (p_deployment, p_address, p_port, p_generation, p_silo_name, p_host_name, p_status, p_proxy_port, p_start, p_alive)
        on conflict (deploymentid, address, port, generation) do nothing;
        get diagnostics changed = row_count;
        if changed = 0 then
            raise exception 'member exists' using errcode = 'HE409';
        end if;
        update orleansmembershipversiontable
        set version = version + 1, timestamp = now()
        where deploymentid = p_deployment and version = p_version;
        get diagnostics changed = row_count;
        if changed = 0 then
            raise exception 'stale membership version' using errcode = 'HE409';
        end if;
        return query select 1;
    exception when sqlstate 'HE409' then
        return query select 0;
    end;
end;
$fn$;

-- Updates a silo row and bumps the version, both or neither; 1 on success, 0 otherwise.
create function hubert_orleans_update_member(
    p_deployment varchar, p_address varchar, p_port integer, p_generation integer, p_status integer,
    p_suspect_times varchar, p_alive timestamptz, p_version integer)
returns table (row_count integer)
language plpgsql as $fn$
declare
    changed integer;
begin
    begin
        update orleansmembershipversiontable
        set version = version + 1, timestamp = now()
        where deploymentid = p_deployment and version = p_version;
        get diagnostics changed = row_count;
        if changed = 0 then
            raise exception 'stale membership version' using errcode = 'HE409';
        end if;
        update orleansmembershiptable
        set status = p_status, suspecttimes = p_suspect_times, iamalivetime = p_alive
        where deploymentid = p_deployment and address = p_address and port = p_port and generation = p_generation;
        get diagnostics changed = row_count;
        if changed = 0 then
            raise exception 'no such member' using errcode = 'HE409';
        end if;
        return query select 1;
    exception when sqlstate 'HE409' then
        return query select 0;
    end;
end;
$fn$;

insert into orleansquery (querykey, querytext) values
-- Returns 1 when the version row was created, 0 when it already existed.
('InsertMembershipVersionKey', '
    with created as (
        insert into orleansmembershipversiontable (deploymentid) values (@DeploymentId)
        on conflict (deploymentid) do nothing
        returning 1)
    select count(*)::integer from created;
'),
('InsertMembershipKey', '
    select row_count from hubert_orleans_insert_member(
        @DeploymentId, @Address, @Port, @Generation, @SiloName, @HostName, @Status, @ProxyPort,
        @StartTime, @IAmAliveTime, @Version);
'),
('UpdateMembershipKey', '
    select row_count from hubert_orleans_update_member(
        @DeploymentId, @Address, @Port, @Generation, @Status, @SuspectTimes, @IAmAliveTime, @Version);
'),
('UpdateIAmAlivetimeKey', '
    update orleansmembershiptable set iamalivetime = @IAmAliveTime
    where deploymentid = @DeploymentId and address = @Address and port = @Port and generation = @Generation;
'),
('MembershipReadRowKey', '
    select v.deploymentid as DeploymentId, m.address as Address, m.port as Port, m.generation as Generation,
           m.siloname as SiloName, m.hostname as HostName, m.status as Status, m.proxyport as ProxyPort,
           m.suspecttimes as SuspectTimes, m.starttime as StartTime, m.iamalivetime as IAmAliveTime,
           v.version as Version
    from orleansmembershipversiontable v
    left join orleansmembershiptable m
        on m.deploymentid = v.deploymentid
       and m.address = @Address and m.port = @Port and m.generation = @Generation
    where v.deploymentid = @DeploymentId;
'),
('MembershipReadAllKey', '
    select v.deploymentid as DeploymentId, m.address as Address, m.port as Port, m.generation as Generation,
           m.siloname as SiloName, m.hostname as HostName, m.status as Status, m.proxyport as ProxyPort,
           m.suspecttimes as SuspectTimes, m.starttime as StartTime, m.iamalivetime as IAmAliveTime,
           v.version as Version
    from orleansmembershipversiontable v
    left join orleansmembershiptable m on m.deploymentid = v.deploymentid
    where v.deploymentid = @DeploymentId;
'),
('DeleteMembershipTableEntriesKey', '
    delete from orleansmembershiptable where deploymentid = @DeploymentId;
    delete from orleansmembershipversiontable where deploymentid = @DeploymentId;
'),
('GatewaysQueryKey', '
    select address as Address, proxyport as ProxyPort, generation as Generation
    from orleansmembershiptable
    where deploymentid = @DeploymentId and status = @Status and proxyport > 0;
'),
-- Status 6 is Dead: only dead silos that stopped heartbeating before the cut-off are removed.
('CleanupDefunctSiloEntriesKey', '
    delete from orleansmembershiptable
    where deploymentid = @DeploymentId and status = 6
      and iamalivetime < @IAmAliveTime and starttime < @IAmAliveTime
      and coalesce(suspecttimes, '''') = '''';
'),
('CleanupDefunctSiloEntryKey', '
    delete from orleansmembershiptable
    where deploymentid = @DeploymentId and status = 6
      and address = @Address and port = @Port and generation = @Generation
      and iamalivetime = @IAmAliveTime and starttime = @StartTime
      and coalesce(suspecttimes, '''') = coalesce(@SuspectTimes, '''');
');

-- Reminders (used by scheduled cohort runs): one row per (service, grain, reminder name).
create table orleansreminderstable (
    serviceid varchar(150) not null,
    grainid varchar(150) not null,
    remindername varchar(150) not null,
    starttime timestamptz(3) not null,
    period bigint not null, -- milliseconds
    grainhash integer not null,
    version integer not null,
    primary key (serviceid, grainid, remindername)
);

create index orleansreminders_hash on orleansreminderstable (serviceid, grainhash);

create function hubert_orleans_upsert_reminder(
    p_service varchar, p_grain varchar, p_name varchar, p_start timestamptz, p_period bigint, p_hash integer)
returns table (version integer)
language sql as $fn$
    insert into orleansreminderstable (serviceid, grainid, remindername, starttime, period, grainhash, version)
    values (p_service, p_grain, p_name, p_start, p_period, p_hash, 0)
    on conflict (serviceid, grainid, remindername) do update
        set starttime = excluded.starttime, period = excluded.period, grainhash = excluded.grainhash,
            version = orleansreminderstable.version + 1
    returning orleansreminderstable.version;
$fn$;

insert into orleansquery (querykey, querytext) values
('UpsertReminderRowKey', '
    select version as Version from hubert_orleans_upsert_reminder(
        @ServiceId, @GrainId, @ReminderName, @StartTime, @Period::bigint, @GrainHash::integer);
'),
('ReadReminderRowsKey', '
    select grainid as GrainId, remindername as ReminderName, starttime as StartTime, period as Period, version as Version
    from orleansreminderstable
    where serviceid = @ServiceId and grainid = @GrainId;
'),
('ReadReminderRowKey', '
    select grainid as GrainId, remindername as ReminderName, starttime as StartTime, period as Period, version as Version
    from orleansreminderstable
    where serviceid = @ServiceId and grainid = @GrainId and remindername = @ReminderName;
'),
('ReadRangeRows1Key', '
    select grainid as GrainId, remindername as ReminderName, starttime as StartTime, period as Period, version as Version
    from orleansreminderstable
    where serviceid = @ServiceId and grainhash > @BeginHash and grainhash <= @EndHash;
'),
('ReadRangeRows2Key', '
    select grainid as GrainId, remindername as ReminderName, starttime as StartTime, period as Period, version as Version
    from orleansreminderstable
    where serviceid = @ServiceId and (grainhash > @BeginHash or grainhash <= @EndHash);
'),
('DeleteReminderRowKey', '
    with gone as (
        delete from orleansreminderstable
        where serviceid = @ServiceId and grainid = @GrainId and remindername = @ReminderName and version = @Version
        returning 1)
    select count(*)::integer from gone;
'),
('DeleteReminderRowsKey', '
    delete from orleansreminderstable where serviceid = @ServiceId;
');
