-- 0005_demo_bank_scale: bank.generate() fast enough for a benchmark-sized bank, with the same rows.
--
-- 0002's generator took minutes for 100,000 customers (bench/RESULTS.md has the figures). Two
-- costs made it slow, neither in what it computes:
--   * The planner pulls nested subqueries up into the query above them, so a column defined
--     once by a draw (a transaction's `kind`, a card's `status`) became its whole expression
--     again at every reference, and md5() ran many times per row instead of once per draw.
--     Each subquery now ends with OFFSET 0, which keeps it a subquery: every draw is computed
--     once per row.
--   * Every row paid the foreign-key triggers and the insertion into every index. The schema's
--     foreign keys and plain indexes are now set aside while the tables fill, and rebuilt at the
--     end in one pass each, in the same transaction.
-- The statements and draws are 0002's, so a (customers, seed, as_of) gives exactly the rows it
-- gave (tests/sql/demo_bank_test.sh compares them), and the guarantees in 0002's header hold.
--
-- Sizes: tests use 50 customers (the pg fixture); benchmarks 100,000, about 2 million
-- transactions. Every SQL tool of deploy/config/bank-agent.yaml was already an index look-up
-- at that size, so no index is added here; tests/sql/bank_plans_test.c keeps it so.
--
-- Applied by `conveyor migrate` inside its own transaction: no BEGIN/COMMIT here.

-- Empties the bank schema and fills it with `customers` customers derived from `seed`, with
-- timestamps relative to `as_of`. Returns the number of customers. Set-based: one INSERT ...
-- SELECT per table, each subquery fenced with OFFSET 0 (see above). Runs in UTC so that days
-- and dates do not depend on the session TimeZone, and without JIT: the planner's row guesses
-- for generate_series make it compile every INSERT, which costs seconds and saves nothing here.
create or replace function bank.generate(customers integer, seed integer, as_of timestamptz default now())
returns integer
language plpgsql
set timezone = 'UTC'
set jit = off
set search_path = bank, pg_catalog, pg_temp
as $fn$
declare
    n  constant integer := customers;
    s  constant integer := seed;
    t0 constant timestamptz := as_of;
    d0 constant timestamptz := date_trunc('day', as_of);  -- midnight UTC of as_of's day
    currencies constant text[] := array['EUR', 'GBP', 'USD', 'CHF', 'PLN'];
    -- Repeats weight the draw: most customers live in Ireland, the UK and Germany.
    countries constant text[] := array['IE', 'IE', 'IE', 'GB', 'GB', 'GB', 'DE', 'DE', 'FR', 'FR',
        'ES', 'ES', 'NL', 'IT', 'PL', 'PT', 'CH', 'BE', 'AT'];
    first_names constant text[] := array['Emma', 'Liam', 'Sophie', 'Lukas', 'Chloé', 'Mateo',
        'Aoife', 'Conor', 'Hannah', 'Jonas', 'Léa', 'Hugo', 'Lucía', 'Pablo', 'Giulia', 'Marco',
        'Julia', 'Jakub', 'Zofia', 'Piotr', 'Anna', 'Noah', 'Mia', 'Finn', 'Sara', 'Daan', 'Eva',
        'Tomás', 'Inês', 'João', 'Olivia', 'Oliver', 'Amelia', 'George', 'Freya', 'Arjun', 'Priya',
        'Yusuf', 'Amira', 'Elena', 'Nikos', 'Ingrid', 'Lars', 'Maja', 'Felix', 'Clara', 'Matteo',
        'Camille', 'Niamh', 'Oisín'];
    last_names constant text[] := array['Murphy', 'Kelly', 'O''Brien', 'Byrne', 'Walsh', 'Smith',
        'Jones', 'Taylor', 'Patel', 'Khan', 'Müller', 'Schmidt', 'Weber', 'Fischer', 'Martin',
        'Bernard', 'Dubois', 'Moreau', 'García', 'Fernández', 'López', 'Martínez', 'Rossi', 'Russo',
        'Bianchi', 'Romano', 'de Vries', 'Jansen', 'Bakker', 'Kowalski', 'Nowak', 'Silva', 'Santos',
        'Ferreira', 'Costa', 'Novak', 'Horvat', 'Papadopoulos', 'Andersson', 'Nilsson', 'Hansen',
        'Larsen', 'Peeters', 'Janssens', 'Gruber', 'Huber', 'Meier', 'Keller'];
    -- Card merchants as they appear on statements, with a price range in EUR.
    m_name constant text[] := array['Tesco', 'Lidl', 'Aldi', 'Carrefour', 'Albert Heijn', 'REWE',
        'Mercadona', 'Dunnes Stores', 'Starbucks', 'Pret A Manger', 'Costa Coffee', 'McDonald''s',
        'Deliveroo', 'Uber Eats', 'Uber', 'Bolt', 'Ryanair', 'easyJet', 'Booking.com', 'Airbnb',
        'Amazon', 'Zalando', 'IKEA', 'Decathlon', 'H&M', 'Zara', 'Primark', 'Boots',
        'Apple.com/bill', 'Spotify', 'Netflix', 'Steam', 'Shell', 'Circle K', 'Vodafone',
        'Trainline', 'Lime', 'MediaMarkt', 'PAYPAL *EBAY', 'SQ *CAFE NERO', 'AMZN Mktp DE',
        'GOOGLE *YouTube', 'SumUp *Market Stall'];
    m_lo constant numeric[] := array[4, 3, 3, 5, 4, 4, 4, 5, 3, 3, 3, 4, 12, 12, 6, 5, 25, 30, 60,
        80, 8, 20, 15, 10, 10, 15, 5, 4, 0.99, 10.99, 7.99, 4.99, 25, 20, 15, 10, 2, 20, 5, 3, 8,
        11.99, 4];
    m_hi constant numeric[] := array[95, 80, 75, 120, 70, 85, 90, 110, 12, 14, 10, 22, 48, 45, 40,
        30, 240, 260, 600, 700, 150, 160, 400, 150, 90, 120, 60, 40, 14.99, 10.99, 17.99, 59.99,
        90, 80, 45, 120, 9, 900, 120, 12, 150, 11.99, 35];
    fee_name constant text[] := array['Monthly plan fee', 'ATM withdrawal fee', 'Card delivery fee',
        'Foreign exchange fee', 'Replacement card fee'];
    fee_lo constant numeric[] := array[7.99, 1, 4.99, 0.2, 6];
    fee_hi constant numeric[] := array[7.99, 6, 4.99, 3, 6];
    atm_places constant text[] := array['Dublin Grafton St', 'London Oxford St',
        'Berlin Alexanderplatz', 'Paris Gare du Nord', 'Madrid Sol', 'Amsterdam Centraal',
        'Lisbon Rossio', 'Rome Termini', 'Warsaw Centralna', 'Zurich HB', 'Vienna Westbahnhof',
        'Brussels Midi', 'Barcelona Sants', 'Munich Marienplatz', 'Cork Patrick St'];
    employers constant text[] := array['Brightwave Ltd', 'Nordlicht GmbH', 'Atelier Moreau SARL',
        'Verde Logistics SL', 'Harbour Health', 'Polaris Software BV', 'Stadtwerke Süd',
        'Ceramica Romana SpA', 'Kestrel Engineering', 'Lumen Retail'];
    -- Countries whose BBAN is all digits, and the BBAN length.
    iban_countries constant text[] := array['DE', 'ES', 'FR', 'BE', 'PT', 'PL'];
    iban_lengths constant integer[] := array[18, 20, 23, 12, 21, 24];
    transfer_failures constant text[] := array[
        'Recipient bank rejected the payment: account closed',
        'Recipient name does not match the account holder',
        'Insufficient balance when the transfer was executed',
        'Recipient bank did not respond in time; the money was returned'];
    card_topup_failures constant text[] := array[
        'Declined by the issuing bank of the top-up card',
        '3-D Secure verification was not completed',
        'The top-up card has expired',
        'The top-up would exceed the account balance limit'];
    transfer_topup_failures constant text[] := array[
        'Sender name does not match the account holder',
        'Payment reference missing; the transfer was returned to the sender'];
    -- The schema's foreign keys and plain indexes, as statements that drop and re-create them.
    fk_drop text[];
    fk_add text[];
    index_drop text[];
    index_add text[];
    statement text;
begin
    if n is null or n < 1 then
        raise exception 'bank.generate: customers must be >= 1, got %', n;
    end if;
    if s is null or t0 is null then
        raise exception 'bank.generate: seed and as_of must not be null';
    end if;

    truncate bank.refunds, bank.transactions, bank.transfers, bank.topups, bank.cards,
             bank.accounts, bank.customers, bank.exchange_rates, bank.kb_articles;

    -- Bulk load: without its foreign keys and plain indexes, the schema takes the rows several
    -- times faster; at the end each index is built in one pass and each key checked in one
    -- join. Primary keys and unique constraints stay. The same transaction re-creates them
    -- from their own definitions, so the schema comes out as it went in.
    select coalesce(array_agg(format('alter table %s drop constraint %I', conrelid::regclass, conname)), '{}'),
           coalesce(array_agg(format('alter table %s add constraint %I %s', conrelid::regclass, conname,
                                     pg_get_constraintdef(oid))), '{}')
      into fk_drop, fk_add
      from pg_constraint
     where contype = 'f' and connamespace = 'bank'::regnamespace;
    select coalesce(array_agg(format('drop index %s', i.indexrelid::regclass)), '{}'),
           coalesce(array_agg(pg_get_indexdef(i.indexrelid)), '{}')
      into index_drop, index_add
      from pg_index i join pg_class c on c.oid = i.indexrelid
     where c.relnamespace = 'bank'::regnamespace
       and not exists (select 1 from pg_constraint k where k.conrelid = i.indrelid and k.conindid = i.indexrelid);
    foreach statement in array fk_drop || index_drop loop
        execute statement;
    end loop;

    -- Exchange rates: the reference mid rates, each pair nudged by up to +-0.3 %.
    insert into bank.exchange_rates (base, quote, rate, as_of)
    select b, q,
           round(per_eur(q) / per_eur(b)
                 * (1 + (rnd(s, 'fx/' || b || q) - 0.5) * 0.006)::numeric, 8),
           date_trunc('minute', t0) - rint(s, 'fx/' || b || q || '/age', 1, 30) * interval '1 minute'
    from unnest(currencies) b, unnest(currencies) q
    where b <> q;

    -- Customers 2..N; cust-1 is written by hand at the end.
    insert into bank.customers (id, name, email, country, created_at)
    select 'cust-' || i,
           fn || ' ' || ln,
           -- ASCII e-mail: strip accents, apostrophes and spaces; the number keeps it unique.
           lower(regexp_replace(translate(fn || '.' || ln,
                                          'áàâäãåéèêëíìîïóòôöõøúùûüçñłśźżćńęąšž',
                                          'aaaaaaeeeeiiiiooooooouuuucnlszzcneasz'),
                                '[^A-Za-z.]', '', 'g'))
               || i || '@' || pick(s, 'cust-' || i || '/domain',
                                   array['example.com', 'example.net', 'example.org']),
           pick(s, 'cust-' || i || '/country', countries),
           t0 - rint(s, 'cust-' || i || '/since', 60 * 86400, 1500 * 86400) * interval '1 second'
    from (select i,
                 pick(s, 'cust-' || i || '/first', first_names) as fn,
                 pick(s, 'cust-' || i || '/last', last_names) as ln
          from generate_series(2, n) i
          offset 0) c;

    -- One account in the home currency; a third of customers also hold a second currency.
    insert into bank.accounts (id, customer_id, currency, balance)
    select 'acc-' || c.i || '-' || k,
           c.id,
           case k when 1 then home_currency(c.country)
                  else pick(s, 'acc-' || c.i || '-2/currency',
                            array_remove(currencies, home_currency(c.country))) end,
           -- Squaring skews balances low, as real ones are.
           round((r * r * case k when 1 then 9000 else 2500 end + r * 40)::numeric, 2)
    from (select id, country, substr(id, 6)::integer as i from bank.customers) c
    cross join lateral generate_series(1, case when rnd(s, c.id || '/accounts') < 0.65
                                              then 1 else 2 end) k
    cross join lateral (select rnd(s, 'acc-' || c.i || '-' || k || '/balance') as r offset 0) x;

    -- 1-3 cards; card K sits on account ((K - 1) mod accounts) + 1, so every account has a card.
    -- The first card is mostly active; extra cards are a mix, including some on their way.
    insert into bank.cards (id, customer_id, account_id, last4, status, issued_at, shipped_at,
                            expected_arrival, delivery_tracking)
    select id, customer_id, account_id, last4, status, issued_at, shipped_at,
           case status when 'ordered' then (t0 + rint(s, id || '/eta', 5, 9) * interval '1 day')::date
                       when 'shipped' then (shipped_at + rint(s, id || '/eta', 2, 5) * interval '1 day')::date
           end,
           case when status = 'shipped'
                then 'CP' || lpad(rint(s, id || '/tracking', 0, 999999999)::text, 9, '0') || country
           end
    from (
        select id, customer_id, account_id, last4, status, country,
               issued_at,
               case when status <> 'ordered'
                    then issued_at + rint(s, id || '/ship', 6 * 3600, 30 * 3600) * interval '1 second'
               end as shipped_at
        from (
            select 'card-' || c.i || '-' || k as id,
                   c.id as customer_id,
                   'acc-' || c.i || '-' || ((k - 1) % c.nacc + 1) as account_id,
                   lpad(rint(s, 'card-' || c.i || '-' || k || '/last4', 0, 9999)::text, 4, '0') as last4,
                   st.status,
                   c.country,
                   case st.status
                       when 'ordered' then t0 - rint(s, 'card-' || c.i || '-' || k || '/issued', 2 * 3600, 72 * 3600) * interval '1 second'
                       when 'shipped' then t0 - rint(s, 'card-' || c.i || '-' || k || '/issued', 48 * 3600, 144 * 3600) * interval '1 second'
                       -- Older cards: the first one at sign-up, later ones since then.
                       else c.created_at + interval '1 day'
                            + (t0 - c.created_at - interval '10 days')
                              * case k when 1 then 0 else rnd(s, 'card-' || c.i || '-' || k || '/issued') end
                   end as issued_at
            from (select cu.id, cu.country, cu.created_at, substr(cu.id, 6)::integer as i, na.nacc
                  from bank.customers cu
                  join (select customer_id, count(*)::integer as nacc from bank.accounts
                        group by customer_id) na on na.customer_id = cu.id
                  offset 0) c
            cross join lateral generate_series(1, greatest(c.nacc,
                case when rnd(s, c.id || '/cards') < 0.5 then 1
                     when rnd(s, c.id || '/cards') < 0.85 then 2 else 3 end)) k
            cross join lateral (select rnd(s, 'card-' || c.i || '-' || k || '/status') as r offset 0) x
            cross join lateral (select case
                when k = 1 then case when x.r < 0.86 then 'active' when x.r < 0.91 then 'frozen'
                                     when x.r < 0.94 then 'lost' when x.r < 0.96 then 'stolen'
                                     else 'cancelled' end
                else case when x.r < 0.55 then 'active' when x.r < 0.65 then 'ordered'
                          when x.r < 0.77 then 'shipped' when x.r < 0.85 then 'frozen'
                          when x.r < 0.90 then 'lost' when x.r < 0.93 then 'stolen'
                          else 'cancelled' end
                end as status) st
            offset 0
        ) a
        offset 0
    ) b;

    -- Transactions over the last 90 days: 5-32 on the first account, 0-8 on a second, so 5-40
    -- per customer. Amounts are drawn in EUR and converted at the reference rates; about one
    -- card payment in eight is made in a foreign currency.
    insert into bank.transactions (id, account_id, card_id, kind, merchant, amount, currency,
                                   original_amount, original_currency, status, created_at)
    select id, account_id,
           case when kind in ('card_payment', 'cash_withdrawal', 'refund') then card_id end,
           kind,
           case kind
               when 'card_payment' then m_name[m]
               when 'refund' then m_name[m]
               when 'cash_withdrawal' then 'ATM ' || pick(s, id || '/atm', atm_places)
               when 'fee' then fee_name[f]
               else case when rnd(s, id || '/salary') < 0.4
                         then 'Salary ' || pick(s, id || '/employer', employers)
                         else 'Transfer from ' || pick(s, id || '/first', first_names) || ' '
                              || pick(s, id || '/last', last_names) end
           end,
           case
               when kind = 'cash_withdrawal'
                   then greatest(10, round(10 * rint(s, id || '/atm_amount', 2, 30) * per_eur(currency), -1))
               when orig_ccy is not null  -- converted, with our 0.3 % card exchange margin
                   then round(eur * per_eur(currency) * 1.003, 2)
               else greatest(0.01, round(eur * per_eur(currency), 2))
           end,
           currency,
           case when orig_ccy is not null then round(eur * per_eur(orig_ccy), 2) end,
           orig_ccy,
           case
               when kind not in ('card_payment', 'cash_withdrawal') then 'completed'
               when created_at > t0 - interval '48 hours'
                   then case when rnd(s, id || '/status') < 0.6 then 'pending' else 'completed' end
               else case when rnd(s, id || '/status') < 0.93 then 'completed'
                         when rnd(s, id || '/status') < 0.97 then 'declined'
                         else 'reversed' end
           end,
           created_at
    from (
        select g.*,
               case g.kind
                   when 'card_payment' then m_lo[g.m] + rnd(s, g.id || '/amount') * (m_hi[g.m] - m_lo[g.m])
                   when 'refund' then m_lo[g.m] + rnd(s, g.id || '/amount') * (m_hi[g.m] - m_lo[g.m])
                   when 'fee' then fee_lo[g.f] + rnd(s, g.id || '/amount') * (fee_hi[g.f] - fee_lo[g.f])
                   when 'transfer_in' then case when rnd(s, g.id || '/salary') < 0.4
                                                then 1400 + rnd(s, g.id || '/amount') * 2800
                                                else 10 + rnd(s, g.id || '/amount') * 490 end
               end::numeric as eur,
               case when g.kind = 'card_payment' and rnd(s, g.id || '/fx') < 0.125
                    then pick(s, g.id || '/fx_currency', array_remove(currencies, g.currency::text))
               end as orig_ccy
        from (
            select 'tx-' || substr(a.id, 5) || '-' || j as id,
                   a.id as account_id,
                   'card-' || substr(a.id, 5) as card_id,  -- card K is on account K
                   a.currency,
                   -- sqrt skews dates towards today: recent months are busier.
                   t0 - floor(r.t * sqrt(r.t) * 90 * 86400) * interval '1 second' as created_at,
                   case when r.k < 0.72 then 'card_payment' when r.k < 0.80 then 'cash_withdrawal'
                        when r.k < 0.84 then 'refund' when r.k < 0.88 then 'fee'
                        else 'transfer_in' end as kind,
                   1 + floor(r.m * cardinality(m_name))::integer as m,
                   1 + floor(r.m * cardinality(fee_name))::integer as f
            from bank.accounts a
            cross join lateral generate_series(1,
                case when a.id like '%-1' then rint(s, a.id || '/tx', 5, 32)
                     else rint(s, a.id || '/tx', 0, 8) end) j
            cross join lateral (select rnd(s, 'tx-' || substr(a.id, 5) || '-' || j || '/time') as t,
                                       rnd(s, 'tx-' || substr(a.id, 5) || '-' || j || '/kind') as k,
                                       rnd(s, 'tx-' || substr(a.id, 5) || '-' || j || '/merchant') as m
                                offset 0) r
            offset 0
        ) g
        offset 0
    ) t;

    -- 0-3 outgoing transfers per customer, mostly completed; pending ones are recent.
    insert into bank.transfers (id, account_id, recipient_name, recipient_iban, amount, currency,
                                status, created_at, expected_at, failure_reason)
    select id, account_id, recipient_name, recipient_iban, amount, currency, status, created_at,
           case when status in ('pending', 'completed')
                then created_at + case when currency = 'EUR' then 24 else 72 end * interval '1 hour'
           end,
           case when status = 'failed' then pick(s, id || '/failure', transfer_failures) end
    from (
        select x.id, x.account_id, x.currency, x.status,
               pick(s, x.id || '/first', first_names) || ' ' || pick(s, x.id || '/last', last_names)
                   as recipient_name,
               bank.iban(iban_countries[x.ic],
                         left(lpad(rint(s, x.id || '/bban1', 0, 999999999)::text, 9, '0')
                              || lpad(rint(s, x.id || '/bban2', 0, 999999999)::text, 9, '0')
                              || lpad(rint(s, x.id || '/bban3', 0, 999999999)::text, 9, '0'),
                              iban_lengths[x.ic])) as recipient_iban,
               round(((10 + rnd(s, x.id || '/amount') * 1490) * per_eur(x.currency))::numeric, 2) as amount,
               case when x.status = 'pending'
                    then t0 - rint(s, x.id || '/time', 3600, 40 * 3600) * interval '1 second'
                    else t0 - rint(s, x.id || '/time', 48 * 3600, 2000 * 3600) * interval '1 second'
               end as created_at
        from (
            select 'tr-' || c.i || '-' || j as id,
                   a.id as account_id, a.currency,
                   case when rnd(s, 'tr-' || c.i || '-' || j || '/status') < 0.72 then 'completed'
                        when rnd(s, 'tr-' || c.i || '-' || j || '/status') < 0.84 then 'pending'
                        when rnd(s, 'tr-' || c.i || '-' || j || '/status') < 0.93 then 'failed'
                        else 'cancelled' end as status,
                   1 + floor(rnd(s, 'tr-' || c.i || '-' || j || '/country') * cardinality(iban_countries))::integer as ic
            from (select id, substr(id, 6)::integer as i from bank.customers) c
            cross join lateral generate_series(1,
                case when rnd(s, c.id || '/transfers') < 0.35 then 0
                     when rnd(s, c.id || '/transfers') < 0.70 then 1
                     when rnd(s, c.id || '/transfers') < 0.90 then 2 else 3 end) j
            -- Mostly from the first account.
            join bank.accounts a on a.id = 'acc-' || c.i || '-'
                || case when rnd(s, 'tr-' || c.i || '-' || j || '/account') < 0.8
                             or not exists (select 1 from bank.accounts a2 where a2.id = 'acc-' || c.i || '-2')
                        then 1 else 2 end
            offset 0
        ) x
        offset 0
    ) y;

    -- 0-3 top-ups per customer; failed ones carry a reason that fits the method.
    insert into bank.topups (id, account_id, amount, currency, method, status, failure_reason, created_at)
    select id, account_id, amount, currency, method, status,
           case
               when status = 'failed' and method = 'card' then pick(s, id || '/failure', card_topup_failures)
               when status = 'failed' and method = 'bank_transfer' then pick(s, id || '/failure', transfer_topup_failures)
               when status = 'failed' then 'The cash deposit partner could not confirm the payment'
               when status = 'reverted' then 'Reversed: the card issuer charged the top-up back'
           end,
           case when status = 'pending'
                then t0 - rint(s, id || '/time', 600, 30 * 3600) * interval '1 second'
                else t0 - rint(s, id || '/time', 24 * 3600, 2000 * 3600) * interval '1 second'
           end
    from (
        select 'top-' || c.i || '-' || j as id,
               'acc-' || c.i || '-1' as account_id,
               a.currency,
               (array[20, 50, 100, 150, 200, 250, 300, 500, 1000])
                   [rint(s, 'top-' || c.i || '-' || j || '/amount', 1, 9)]::numeric as amount,
               case when rnd(s, 'top-' || c.i || '-' || j || '/method') < 0.6 then 'card'
                    when rnd(s, 'top-' || c.i || '-' || j || '/method') < 0.9 then 'bank_transfer'
                    else 'cash' end as method,
               case when rnd(s, 'top-' || c.i || '-' || j || '/status') < 0.80 then 'completed'
                    when rnd(s, 'top-' || c.i || '-' || j || '/status') < 0.86 then 'pending'
                    when rnd(s, 'top-' || c.i || '-' || j || '/status') < 0.97 then 'failed'
                    else 'reverted' end as status
        from (select id, substr(id, 6)::integer as i from bank.customers) c
        cross join lateral generate_series(1,
            case when rnd(s, c.id || '/topups') < 0.35 then 0
                 when rnd(s, c.id || '/topups') < 0.70 then 1
                 when rnd(s, c.id || '/topups') < 0.90 then 2 else 3 end) j
        join bank.accounts a on a.id = 'acc-' || c.i || '-1'
        offset 0
    ) x;

    -- Refund requests on about one completed card payment in 25.
    insert into bank.refunds (id, transaction_id, amount, status, created_at)
    select 'ref-' || substr(t.id, 4), t.id,
           case when rnd(s, t.id || '/refund_part') < 0.8 then t.amount
                else greatest(0.01, round(t.amount / 2, 2)) end,
           case when rnd(s, t.id || '/refund_status') < 0.30 then 'requested'
                when rnd(s, t.id || '/refund_status') < 0.50 then 'approved'
                when rnd(s, t.id || '/refund_status') < 0.65 then 'rejected'
                else 'completed' end,
           least(t0, t.created_at + rint(s, t.id || '/refund_time', 2 * 3600, 240 * 3600) * interval '1 second')
    from bank.transactions t
    where t.kind = 'card_payment' and t.status = 'completed'
      and rnd(s, t.id || '/refund') < 0.04;

    -- cust-1, the persona the tests and demos talk about: fixed rows, see the header.
    insert into bank.customers (id, name, email, country, created_at) values
        ('cust-1', 'Alex Morgan', 'alex.morgan@example.com', 'IE', t0 - interval '9000 hours');
    insert into bank.accounts (id, customer_id, currency, balance) values
        ('acc-1-1', 'cust-1', 'EUR', 2841.37),
        ('acc-1-2', 'cust-1', 'GBP', 312.50);
    insert into bank.cards (id, customer_id, account_id, last4, status, issued_at, shipped_at,
                            expected_arrival, delivery_tracking) values
        ('card-1-1', 'cust-1', 'acc-1-1', '4417', 'active', t0 - interval '8950 hours',
         t0 - interval '8930 hours', null, null),
        ('card-1-2', 'cust-1', 'acc-1-1', '9052', 'shipped', t0 - interval '60 hours',
         t0 - interval '40 hours', (d0 + interval '3 days')::date, 'CP482913374IE');
    insert into bank.transactions (id, account_id, card_id, kind, merchant, amount, currency,
                                   original_amount, original_currency, status, created_at) values
        ('tx-1-1-1', 'acc-1-1', null, 'transfer_in', 'Salary Brightwave Ltd', 2450.00, 'EUR', null, null, 'completed', t0 - interval '336 hours'),
        ('tx-1-1-2', 'acc-1-1', 'card-1-1', 'card_payment', 'Spotify', 10.99, 'EUR', null, null, 'completed', t0 - interval '150 hours'),
        ('tx-1-1-3', 'acc-1-1', 'card-1-1', 'cash_withdrawal', 'ATM Dublin Grafton St', 100.00, 'EUR', null, null, 'completed', t0 - interval '220 hours'),
        ('tx-1-1-4', 'acc-1-1', null, 'fee', 'ATM withdrawal fee', 2.00, 'EUR', null, null, 'completed', t0 - interval '220 hours' + interval '1 second'),
        ('tx-1-1-5', 'acc-1-1', 'card-1-1', 'card_payment', 'Zara', 59.90, 'EUR', null, null, 'completed', t0 - interval '290 hours'),
        ('tx-1-1-6', 'acc-1-1', 'card-1-1', 'card_payment', 'TFL TRAVEL CH', 9.80, 'EUR', 8.40, 'GBP', 'completed', t0 - interval '100 hours'),
        -- The double charge: same merchant, amount and UTC day, four minutes apart.
        ('tx-1-1-7', 'acc-1-1', 'card-1-1', 'card_payment', 'Deliveroo', 18.90, 'EUR', null, null, 'completed', d0 - interval '2 days' + interval '13 hours 12 minutes'),
        ('tx-1-1-8', 'acc-1-1', 'card-1-1', 'card_payment', 'Deliveroo', 18.90, 'EUR', null, null, 'completed', d0 - interval '2 days' + interval '13 hours 16 minutes'),
        ('tx-1-1-9', 'acc-1-1', 'card-1-1', 'card_payment', 'Lidl', 23.47, 'EUR', null, null, 'completed', t0 - interval '26 hours'),
        ('tx-1-1-10', 'acc-1-1', 'card-1-1', 'card_payment', 'SQ *BLUE HERON TRADING', 42.80, 'EUR', null, null, 'completed', t0 - interval '60 hours'),
        ('tx-1-1-11', 'acc-1-1', 'card-1-1', 'card_payment', 'Steam', 59.99, 'EUR', null, null, 'declined', t0 - interval '80 hours'),
        ('tx-1-1-12', 'acc-1-1', 'card-1-1', 'card_payment', 'Uber', 14.20, 'EUR', null, null, 'pending', t0 - interval '3 hours'),
        ('tx-1-1-13', 'acc-1-1', null, 'fee', 'Monthly plan fee', 7.99, 'EUR', null, null, 'completed', t0 - interval '400 hours'),
        ('tx-1-1-14', 'acc-1-1', 'card-1-1', 'card_payment', 'Amazon', 24.99, 'EUR', null, null, 'completed', t0 - interval '320 hours'),
        ('tx-1-1-15', 'acc-1-1', 'card-1-1', 'refund', 'Amazon', 24.99, 'EUR', null, null, 'completed', t0 - interval '200 hours'),
        ('tx-1-2-1', 'acc-1-2', null, 'transfer_in', 'Transfer from Jamie Morgan', 400.00, 'GBP', null, null, 'completed', t0 - interval '500 hours');
    insert into bank.transfers (id, account_id, recipient_name, recipient_iban, amount, currency,
                                status, created_at, expected_at, failure_reason) values
        ('tr-1-1', 'acc-1-1', 'Sean Murphy', 'IE29AIBK93115212345678', 250.00, 'EUR', 'pending',
         t0 - interval '20 hours', t0 + interval '28 hours', null),
        ('tr-1-2', 'acc-1-1', 'Claire Dubois', 'FR1420041010050500013M02606', 120.00, 'EUR', 'completed',
         t0 - interval '240 hours', t0 - interval '216 hours', null);
    insert into bank.topups (id, account_id, amount, currency, method, status, failure_reason, created_at) values
        ('top-1-1', 'acc-1-1', 200.00, 'EUR', 'card', 'failed',
         'Declined by the issuing bank of the top-up card', t0 - interval '5 hours'),
        ('top-1-2', 'acc-1-1', 500.00, 'EUR', 'bank_transfer', 'completed', null, t0 - interval '700 hours');
    insert into bank.refunds (id, transaction_id, amount, status, created_at) values
        ('ref-1-1-5', 'tx-1-1-5', 59.90, 'requested', t0 - interval '30 hours'),
        ('ref-1-1-14', 'tx-1-1-14', 24.99, 'completed', t0 - interval '210 hours');

    perform bank.load_kb();

    foreach statement in array index_add || fk_add loop
        execute statement;
    end loop;

    -- Fresh statistics so the agent's first queries get good plans.
    analyze bank.customers, bank.accounts, bank.cards, bank.transactions, bank.transfers,
            bank.topups, bank.refunds, bank.exchange_rates, bank.kb_articles;

    return n;
end
$fn$;

comment on function bank.generate(integer, integer, timestamptz) is
    'Empties schema bank and fills it deterministically from (customers, seed, as_of); see migration 0002 for the cust-1 guarantees.';
