-- The demo bank's write path: the only way conveyor's actions change the bank. Each action is a
-- function that, in one transaction: takes its idempotency key (a lock on the key, so that two
-- calls with one key, even at once, run one after the other); returns the outcome recorded under
-- the key, changing nothing, when the key was applied before; otherwise re-checks its
-- precondition on the rows it would change, locked (the card is still active, the payment still
-- refundable: never what a tool read earlier, which may be stale or cached), makes the change,
-- and records the outcome under the key. An outcome is `done` or `refused` (the precondition no
-- longer holds, with the reason); both are final for their key.
--
-- Every function returns one JSON object: {"outcome": "done"|"refused", "replayed": bool,
-- "reason": text (refused), ...what it changed}. They run as the schema's owner (SECURITY
-- DEFINER, with a fixed search_path) and only the executor's role may call them
-- (deploy/sql/roles.sql): it needs no grant on any table, and nobody else may act.

create table bank.applied_actions (
    idempotency_key text primary key check (length(idempotency_key) between 1 and 200),
    kind            text not null,
    params          jsonb not null,
    outcome         text not null check (outcome in ('done', 'refused')),
    result          jsonb not null,
    applied_at      timestamptz not null default now()
);

-- The outcome already recorded under key, marked replayed, or null for a key not applied yet.
-- Takes the key's lock until the transaction ends. A key applied by another kind of action, or
-- with other parameters (another customer's, another card), is a caller's bug: an error, never a
-- silent replay, which would also hand one customer's outcome to another.
create function bank.action_replay(p_key text, p_kind text, p_params jsonb) returns jsonb
language plpgsql set search_path = pg_catalog, bank, pg_temp as $$
declare
    applied bank.applied_actions;
begin
    if p_key is null or length(p_key) = 0 or length(p_key) > 200 then
        raise exception 'an idempotency key is 1..200 characters' using errcode = '22023';
    end if;
    perform pg_advisory_xact_lock(hashtextextended('bank.applied_actions:' || p_key, 0));
    select * into applied from bank.applied_actions where idempotency_key = p_key;
    if not found then
        return null;
    end if;
    if applied.kind <> p_kind then
        raise exception 'idempotency key % was applied by %, not %', p_key, applied.kind, p_kind
            using errcode = '23505';
    end if;
    if applied.params <> p_params then
        raise exception 'idempotency key % was applied with other parameters', p_key using errcode = '23505';
    end if;
    return applied.result || jsonb_build_object('replayed', true);
end
$$;

-- Records an outcome under key and returns it (replayed false).
create function bank.action_record(p_key text, p_kind text, p_params jsonb, p_outcome text, p_result jsonb)
returns jsonb
language sql set search_path = pg_catalog, bank, pg_temp as $$
    insert into bank.applied_actions (idempotency_key, kind, params, outcome, result)
    values (p_key, p_kind, p_params, p_outcome, jsonb_build_object('outcome', p_outcome) || p_result)
    returning result || jsonb_build_object('replayed', false)
$$;

-- Freezes an active card of the customer.
create function bank.freeze_card(p_key text, p_customer_id text, p_card_id text) returns jsonb
language plpgsql security definer set search_path = pg_catalog, bank, pg_temp as $$
declare
    params jsonb := jsonb_build_object('customer_id', p_customer_id, 'card_id', p_card_id);
    previous jsonb := bank.action_replay(p_key, 'freeze_card', params);
    card bank.cards;
begin
    if previous is not null then
        return previous;
    end if;
    select * into card from bank.cards where id = p_card_id and customer_id = p_customer_id for update;
    if not found then
        return bank.action_record(p_key, 'freeze_card', params, 'refused',
                                  jsonb_build_object('reason', 'the customer has no such card'));
    end if;
    if card.status <> 'active' then
        return bank.action_record(p_key, 'freeze_card', params, 'refused',
                                  jsonb_build_object('reason', format('the card is %s, not active', card.status),
                                                     'card_id', card.id, 'last4', card.last4));
    end if;
    update bank.cards set status = 'frozen' where id = card.id;
    return bank.action_record(p_key, 'freeze_card', params, 'done',
                              jsonb_build_object('card_id', card.id, 'last4', card.last4, 'status', 'frozen'));
end
$$;

-- Refunds a completed card payment of the customer's, from the last 60 days, not refunded yet,
-- for at most its amount (the whole of it when p_amount is null).
create function bank.refund_transaction(p_key text, p_customer_id text, p_transaction_id text, p_amount numeric)
returns jsonb
language plpgsql security definer set search_path = pg_catalog, bank, pg_temp as $$
declare
    params jsonb := jsonb_build_object('customer_id', p_customer_id, 'transaction_id', p_transaction_id,
                                       'amount', p_amount);
    previous jsonb := bank.action_replay(p_key, 'refund_transaction', params);
    payment bank.transactions;
    amount numeric(14, 2);
    refund_id text;
    refused text;
begin
    if previous is not null then
        return previous;
    end if;
    select t.* into payment from bank.transactions t join bank.accounts a on a.id = t.account_id
     where t.id = p_transaction_id and a.customer_id = p_customer_id for update of t;
    -- the amount is checked as given, before it is rounded into the refund's column
    refused := case
        when payment.id is null then 'the customer has no such transaction'
        when payment.kind <> 'card_payment' then format('it is a %s, not a card payment', payment.kind)
        when payment.status <> 'completed' then format('the payment is %s, not completed', payment.status)
        when payment.created_at < now() - interval '60 days' then 'the payment is older than 60 days'
        when exists (select from bank.refunds where transaction_id = payment.id and status <> 'rejected')
            then 'the payment is refunded already'
        when p_amount is not null and (p_amount <= 0 or p_amount > payment.amount or p_amount <> round(p_amount, 2))
            then format('%s is not an amount of cents between 0 and the payment''s %s', p_amount, payment.amount)
    end;
    if refused is not null then
        return bank.action_record(p_key, 'refund_transaction', params, 'refused',
                                  jsonb_build_object('reason', refused, 'transaction_id', p_transaction_id));
    end if;
    amount := coalesce(p_amount, payment.amount);
    refund_id := 'ref-' || substr(payment.id, 4);
    insert into bank.refunds (id, transaction_id, amount, status) values (refund_id, payment.id, amount, 'approved');
    return bank.action_record(p_key, 'refund_transaction', params, 'done',
                              jsonb_build_object('refund_id', refund_id, 'transaction_id', payment.id,
                                                 'amount', amount::text, 'currency', payment.currency));
end
$$;

-- Cancels a pending transfer of the customer's.
create function bank.cancel_transfer(p_key text, p_customer_id text, p_transfer_id text) returns jsonb
language plpgsql security definer set search_path = pg_catalog, bank, pg_temp as $$
declare
    params jsonb := jsonb_build_object('customer_id', p_customer_id, 'transfer_id', p_transfer_id);
    previous jsonb := bank.action_replay(p_key, 'cancel_transfer', params);
    transfer bank.transfers;
begin
    if previous is not null then
        return previous;
    end if;
    select tr.* into transfer from bank.transfers tr join bank.accounts a on a.id = tr.account_id
     where tr.id = p_transfer_id and a.customer_id = p_customer_id for update of tr;
    if transfer.id is null or transfer.status <> 'pending' then
        return bank.action_record(p_key, 'cancel_transfer', params, 'refused',
                                  jsonb_build_object('reason', case when transfer.id is null
                                                                    then 'the customer has no such transfer'
                                                                    else format('the transfer is %s, not pending',
                                                                                transfer.status) end,
                                                     'transfer_id', p_transfer_id));
    end if;
    update bank.transfers set status = 'cancelled' where id = transfer.id;
    return bank.action_record(p_key, 'cancel_transfer', params, 'done',
                              jsonb_build_object('transfer_id', transfer.id, 'amount', transfer.amount::text,
                                                 'currency', transfer.currency, 'recipient_name',
                                                 transfer.recipient_name));
end
$$;

-- Orders a replacement for a card of the customer's that is frozen, lost or stolen, unless one is
-- on its way already: a new card on the same account, `ordered`, expected in five days.
create function bank.order_replacement_card(p_key text, p_customer_id text, p_card_id text) returns jsonb
language plpgsql security definer set search_path = pg_catalog, bank, pg_temp as $$
declare
    params jsonb := jsonb_build_object('customer_id', p_customer_id, 'card_id', p_card_id);
    previous jsonb := bank.action_replay(p_key, 'order_replacement_card', params);
    card bank.cards;
    new_id text;
    new_last4 text;
    arrival date := current_date + 5;
    refused text;
begin
    if previous is not null then
        return previous;
    end if;
    -- the customer's row first: two orders for two of their cards queue here
    perform from bank.customers where id = p_customer_id for no key update;
    select * into card from bank.cards where id = p_card_id and customer_id = p_customer_id for update;
    refused := case
        when card.id is null then 'the customer has no such card'
        when card.status not in ('frozen', 'lost', 'stolen') then format('the card is %s: only a frozen, lost or '
                                                                         'stolen card is replaced', card.status)
        when exists (select from bank.cards where customer_id = p_customer_id and account_id = card.account_id
                                              and status in ('ordered', 'shipped'))
            then 'a new card for this account is on its way already'
    end;
    if refused is not null then
        return bank.action_record(p_key, 'order_replacement_card', params, 'refused',
                                  jsonb_build_object('reason', refused, 'card_id', p_card_id));
    end if;
    select 'card-' || split_part(p_customer_id, '-', 2) || '-'
           || (coalesce(max(nullif(regexp_replace(id, '^card-[0-9]+-', ''), id)::bigint), 0) + 1)
      into new_id
      from bank.cards where customer_id = p_customer_id and id ~ '^card-[0-9]+-[0-9]+$';
    new_last4 := lpad(mod(abs(hashtext(p_key)::bigint), 10000)::text, 4, '0');
    insert into bank.cards (id, customer_id, account_id, last4, status, issued_at, expected_arrival)
    values (new_id, p_customer_id, card.account_id, new_last4, 'ordered', now(), arrival);
    return bank.action_record(p_key, 'order_replacement_card', params, 'done',
                              jsonb_build_object('card_id', new_id, 'last4', new_last4, 'replaces', card.id,
                                                 'expected_arrival', arrival::text));
end
$$;

-- Functions are callable by everyone unless told otherwise: these only by the executor's role.
revoke all on function bank.action_replay(text, text, jsonb), bank.action_record(text, text, jsonb, text, jsonb),
    bank.freeze_card(text, text, text), bank.refund_transaction(text, text, text, numeric),
    bank.cancel_transfer(text, text, text), bank.order_replacement_card(text, text, text) from public;
