Feature: Quorum components scale out and in while clients write
  As an operator I need to grow Galera and RabbitMQ to five members and shrink them back to
  three without stopping the clients, and to be stopped with a clear error when I ask for an
  even member count.

  Background:
    Given the lab is up

  @scaling
  Scenario: Galera scales from three to five members and back while a client writes
    Given galera has its full membership
    And a client writes to galera continuously
    When galera is scaled to 5 members
    Then every member of galera is healthy and agrees on the membership within 300 seconds
    And every galera member holds every acknowledged write
    When galera is scaled to 3 members
    Then every member of galera is healthy and agrees on the membership within 120 seconds
    And the longest write gap of galera is at most 20 seconds
    And every acknowledged write to galera is still there

  @scaling @slow
  Scenario: RabbitMQ scales from three to five members and back while a client writes
    Given rabbitmq has its full membership
    And a client writes to rabbitmq continuously
    When rabbitmq is scaled to 5 members
    Then every member of rabbitmq is healthy and agrees on the membership within 300 seconds
    When rabbitmq is scaled to 3 members
    Then every member of rabbitmq is healthy and agrees on the membership within 180 seconds
    And the longest write gap of rabbitmq is at most 20 seconds
    And every acknowledged write to rabbitmq is still there

  @scaling @quorum
  Scenario Outline: An even <component> member count is refused with a clear error
    When the operator asks for 4 <component> members
    Then the request is refused with a quorum error saying "odd"
    And <component> has 3 members

    Examples:
      | component |
      | galera    |
      | etcd      |
      | rabbitmq  |
